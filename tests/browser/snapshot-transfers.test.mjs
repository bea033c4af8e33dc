// Byte progress on the snapshots page against the real console and the emulated cluster: a
// snapshot taken from a node the emulator slows down shows a progress bar with its figure in
// words, on the operator's page and on a viewer's page alike, and the viewer's history gains the
// entry without a reload; a download shows its own bar and saves the stored file.
// Needs TALOS_DR_URL, EMULATOR_CONTROL, TALOS_DR_USER / TALOS_DR_PASSWORD, TALOS_DR_VIEWER /
// TALOS_DR_VIEWER_PASSWORD and TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD;
// scripts/browser-tests.sh sets them all.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";

import { launchBrowser, openPage, screenshot, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CONTROL = process.env.EMULATOR_CONTROL;
const CLUSTER = "emulated";
const VIEWER = process.env.TALOS_DR_VIEWER;
const VIEWER_PASSWORD = process.env.TALOS_DR_VIEWER_PASSWORD;
const OPERATOR = process.env.TALOS_DR_OPERATOR;
const OPERATOR_PASSWORD = process.env.TALOS_DR_OPERATOR_PASSWORD;
// Below the console's 3 s call timeout, so health polls of the slow node still succeed.
const SLOW_MS = 2_000;

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(CONTROL, "EMULATOR_CONTROL must name the emulator's control address");
  assert.ok(VIEWER && VIEWER_PASSWORD, "TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD must name a viewer-only user");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD must name a viewer+operator user");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const snapshotsUrl = () => new URL(`/clusters/${CLUSTER}/snapshots`, CONSOLE).href;
const rows = (page) => page.locator('tr[data-testid="snapshot-row"]');

/** The emulated control-plane nodes' IPs, in order. */
async function nodes() {
  const res = await fetch(new URL("/cluster", CONTROL));
  const text = await res.text();
  const ips = [...new Set(text.match(/127\.\d+\.\d+\.\d+/g) ?? [])];
  assert.ok(ips.length >= 2, `the emulator lists its nodes: ${text}`);
  return ips;
}

async function slow(ip, ms) {
  const res = await fetch(new URL(`/nodes/${ip}/slow`, CONTROL), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ delay_ms: ms }),
  });
  assert.ok(res.ok, `slowing ${ip}: ${res.status} ${await res.text()}`);
}

async function openSnapshots(user, password) {
  const opened = await openPage(browser);
  await signIn(opened.page, CONSOLE, user, password);
  await opened.page.goto(snapshotsUrl());
  await opened.page.locator('[data-testid="snapshots-page"]').waitFor();
  await opened.page.locator('[data-testid="snapshot-history"], [data-testid="no-snapshots"]').first().waitFor({ timeout: 15_000 });
  return opened;
}

test("a take from a slow node shows its bytes to the operator and to a viewer, then lands in both histories", async () => {
  const operator = await openSnapshots(OPERATOR, OPERATOR_PASSWORD);
  const viewer = await openSnapshots(VIEWER, VIEWER_PASSWORD);
  // Health must be known before the console knows the node's database size.
  await operator.page.waitForTimeout(2_000);
  const viewerRowsBefore = await rows(viewer.page).count();
  const node = (await nodes())[1];
  await slow(node, SLOW_MS);
  try {
    await operator.page.locator('[data-testid="snapshot-node"]').selectOption(node);
    await operator.page.locator('[data-testid="take-snapshot"]').click();

    // The viewer never clicked anything: the bar comes from the console's stream.
    for (const { page } of [viewer, operator]) {
      const transfer = page.locator('[data-testid="transfer"]');
      await transfer.waitFor({ timeout: 10_000 });
      assert.match(await transfer.locator(".transfer-title").textContent(), new RegExp(`^Snapshot from ${node.replaceAll(".", "\\.")} by ${OPERATOR}, started`));
      assert.equal(await transfer.locator('[data-testid="transfer-progress"] progress').count(), 1, "a progress bar");
      // The node's database size is known from the health poll: "0 B of 1.2 MiB".
      assert.match(await transfer.locator('[data-testid="transfer-progress-words"]').textContent(), /^[\d.]+ (B|KiB|MiB|GiB) of [\d.]+ (KiB|MiB|GiB)$/);
    }
    await screenshot(viewer.page, "snapshot-transfer-viewer");

    await operator.page.locator('[data-testid="action-result"]').waitFor({ timeout: 60_000 });
  } finally {
    await slow(node, 0);
  }
  // The viewer's page drops the bar and lists the new entry, without a reload.
  await viewer.page.locator('[data-testid="transfer"]').waitFor({ state: "detached", timeout: 10_000 });
  await viewer.page.waitForFunction(
    (n) => document.querySelectorAll('tr[data-testid="snapshot-row"]').length > n,
    viewerRowsBefore,
    { timeout: 10_000 },
  );
  const newest = rows(viewer.page).first();
  assert.equal(await newest.getAttribute("data-failed"), "false");
  assert.equal(await newest.locator("td").nth(3).textContent(), node);

  for (const { context, problems } of [operator, viewer]) {
    assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], "no console errors on the page");
    await context.close();
  }
});

test("a download shows its progress and saves the stored file", async () => {
  const { context, page, problems } = await openSnapshots(process.env.TALOS_DR_USER, process.env.TALOS_DR_PASSWORD);
  const row = rows(page).filter({ has: page.locator('[data-testid="snapshot-download"]') }).first();
  await row.waitFor({ timeout: 10_000 });
  const id = await row.getAttribute("data-id");
  const detail = await page.request.get(new URL(`/api/clusters/${CLUSTER}/snapshots/${id}`, CONSOLE).href);
  assert.equal(detail.status(), 200);
  const { snapshot } = await detail.json();

  await page.evaluate(() => {
    window.__downloadWords = [];
    new MutationObserver(() => {
      const words = document.querySelector('[data-testid="download-progress-words"]');
      if (words) window.__downloadWords.push(words.textContent);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const saved = page.waitForEvent("download", { timeout: 30_000 });
  await row.locator('[data-testid="snapshot-download"]').click();
  const download = await saved;
  const raw = snapshot.kind === "raw_copy" || snapshot.stored_as === "raw_copy";
  assert.equal(download.suggestedFilename(), `${CLUSTER}-${id}.${raw ? "db" : "snapshot"}`);
  const bytes = await readFile(await download.path());
  assert.equal(bytes.length, snapshot.size);
  assert.equal(createHash("sha256").update(bytes).digest("hex"), snapshot.sha256);

  const words = await page.evaluate(() => window.__downloadWords);
  assert.ok(words.length > 0, "the download's progress was shown");
  assert.ok(words.every((w) => /^[\d.]+ (B|KiB|MiB|GiB)( of [\d.]+ (B|KiB|MiB|GiB))?$/.test(w)), words.join(" | "));
  // Done: the bar is gone and the button is back.
  await row.locator('[data-testid="snapshot-download"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('[data-testid="download-progress"]').count(), 0);
  assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], "no console errors on the page");
  await context.close();
});
