// The snapshots page against the real console and an emulated three-node cluster on real etcd:
// take a snapshot and watch it appear with its figures, upload a file with a progress bar, and
// compare two snapshots to see the keys written between them.
// Needs TALOS_DR_URL, EMULATOR_CONTROL and TALOS_DR_USER / TALOS_DR_PASSWORD; scripts/browser-tests.sh
// sets them all. `etcdctl` writes keys straight into the emulated etcd.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { launchBrowser, openPage, screenshot, screenshotBothThemes, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CONTROL = process.env.EMULATOR_CONTROL;
const CLUSTER = "emulated";

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(CONTROL, "EMULATOR_CONTROL must name the emulator's control address");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** The first control-plane node's IP, from the emulator's cluster listing. */
async function firstNode() {
  const res = await fetch(new URL("/cluster", CONTROL));
  const text = await res.text();
  const ip = text.match(/127\.\d+\.\d+\.\d+/);
  assert.ok(ip, `the emulator lists its nodes: ${text}`);
  return ip[0];
}

function putKey(node, key, value) {
  execFileSync("etcdctl", ["--endpoints", `http://${node}:2379`, "--command-timeout=5s", "put", key, value], {
    env: { ...process.env, ETCDCTL_API: "3" },
  });
}

const rows = (page) => page.locator('tr[data-testid="snapshot-row"]');

async function takeSnapshot(page) {
  const before = await rows(page).count();
  await page.locator('[data-testid="take-snapshot"]').click();
  await page.locator('[data-testid="action-result"]').waitFor({ timeout: 60_000 });
  await page.waitForFunction(
    (n) => document.querySelectorAll('tr[data-testid="snapshot-row"]').length > n,
    before,
    { timeout: 10_000 },
  );
  // Ids, not locators: the first row changes as entries are added.
  const id = await rows(page).first().getAttribute("data-id");
  return page.locator(`tr[data-testid="snapshot-row"][data-id="${id}"]`);
}

test("a snapshot taken from the page appears with its figures; upload shows progress; diff lists keys", async () => {
  const { page, problems } = await openPage(browser);
  await signIn(page, CONSOLE);
  await page.goto(new URL(`/clusters/${CLUSTER}`, CONSOLE).href);
  await page.locator('[data-testid="snapshots-link"]').click();
  await page.locator('[data-testid="snapshots-page"]').waitFor();
  // Health must be known before the console can pick a node.
  await page.waitForTimeout(2_000);

  // Take one: it appears at the top with revision, keys and a verdict.
  const first = await takeSnapshot(page);
  assert.equal(await first.getAttribute("data-failed"), "false");
  const revision = Number(await first.locator('[data-testid="snapshot-revision"]').textContent());
  assert.ok(revision > 0, `revision shown: ${revision}`);
  assert.ok(Number(await first.locator('[data-testid="snapshot-keys"]').textContent()) > 0, "keys shown");
  assert.match(await first.locator('[data-testid="snapshot-verdict"]').textContent(), /restores/);
  await screenshotBothThemes(page, "snapshots-taken");

  // Keys written now are in the next snapshot only.
  const node = await firstNode();
  putKey(node, "/registry/configmaps/default/browser-between", "1");
  const second = await takeSnapshot(page);
  assert.equal(await second.getAttribute("data-failed"), "false");

  // Upload the first snapshot back, watching the progress bar.
  const firstId = await first.getAttribute("data-id");
  const download = await page.request.get(new URL(`/api/clusters/${CLUSTER}/snapshots/${firstId}/download`, CONSOLE).href);
  assert.equal(download.status(), 200);
  const dir = await mkdtemp(join(tmpdir(), "talos-dr-upload-"));
  const file = join(dir, "db.snapshot");
  await writeFile(file, await download.body());
  await page.evaluate(() => {
    window.__uploadPercents = [];
    new MutationObserver(() => {
      const p = document.querySelector('[data-testid="upload-percent"]');
      if (p) window.__uploadPercents.push(p.textContent);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const before = await rows(page).count();
  await page.locator('[data-testid="upload-input"]').setInputFiles(file);
  await page.locator('[data-testid="action-result"]').filter({ hasText: "Upload stored" }).waitFor({ timeout: 60_000 });
  const percents = await page.evaluate(() => window.__uploadPercents);
  assert.ok(percents.length > 0, "the progress bar was shown");
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-testid="snapshot-row"]').length > n, before);
  assert.match(await rows(page).first().locator('[data-testid="snapshot-kind"]').textContent(), /upload/);

  // Choose the two taken snapshots and compare them.
  const secondId = await second.getAttribute("data-id");
  await page.locator(`tr[data-id="${firstId}"] [data-testid="compare-choice"]`).check();
  await page.locator(`tr[data-id="${secondId}"] [data-testid="compare-choice"]`).check();
  await page.locator('[data-testid="compare-link"]').click();
  await page.locator('[data-testid="diff-summary"]').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('[data-testid="diff-summary"]').textContent(), /loses [1-9]\d* keys?,/);
  const keys = await page.locator('[data-testid="diff-key"]').allTextContents();
  assert.ok(keys.some((k) => k.includes("/registry/configmaps/default/browser-between")), keys.join("\n"));
  await screenshot(page, "snapshots-diff");

  assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], "no console errors on the page");
});
