// The health page against the real console and an emulated three-node cluster on real etcd:
// three healthy members, then etcd killed on one node shows up live (no reload) within 10 s.
// Needs TALOS_DR_URL (the console), EMULATOR_CONTROL (the emulator's fault control) and
// TALOS_DR_USER / TALOS_DR_PASSWORD (a console user); scripts/browser-tests.sh sets them all.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { countNavigations, launchBrowser, openPage, screenshotBothThemes, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CONTROL = process.env.EMULATOR_CONTROL;
const SHOWS_KILL_WITHIN_MS = 10_000;

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console, e.g. http://127.0.1.1:8480 (see scripts/browser-tests.sh)");
  assert.ok(CONTROL, "EMULATOR_CONTROL must name the emulator's control address, e.g. http://127.0.0.1:PORT");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

async function control(method, path) {
  const res = await fetch(new URL(path, CONTROL), { method });
  const body = await res.text();
  assert.ok(res.ok, `${method} ${path} on the emulator answered ${res.status}: ${body}`);
  return body;
}

const memberState = (page, rowTestId) =>
  page.locator(`tr[data-testid="${rowTestId}"] [data-testid="member-state"]`);

test("a killed etcd member shows as unhealthy within 10 s, live, without a reload", async (t) => {
  const { page, problems } = await openPage(browser);
  await signIn(page, CONSOLE);
  await page.goto(CONSOLE);

  // The console may still be on its first polls; healthy must come, but give it time.
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 30_000 });
  const rows = page.locator('tr[data-testid^="member-"]');
  assert.equal(await rows.count(), 3, "three etcd members");
  for (const state of await page.locator('tr[data-testid^="member-"] [data-testid="member-state"]').allTextContents()) {
    assert.match(state, /healthy/);
    assert.doesNotMatch(state, /unhealthy/);
  }
  assert.equal(await page.locator('[data-testid="connection"]').getAttribute("data-state"), "live");
  assert.equal(await page.locator('tr[data-testid^="node-"]').count(), 3, "three control-plane node rows");
  await screenshotBothThemes(page, "health-healthy");

  // Kill a follower, so the test measures the console and not a leader election.
  const victim = page.locator('tr[data-testid^="member-"][data-leader="false"]').first();
  const victimRow = await victim.getAttribute("data-testid");
  const victimNode = await victim.getAttribute("data-node");
  assert.ok(victimNode, `member row ${victimRow} names its node`);
  await page.locator(`tr[data-testid="node-${victimNode}"]`).waitFor();
  assert.match(await control("GET", "/cluster"), new RegExp(victimNode.replaceAll(".", "\\.")));

  await page.evaluate(() => { window.__sameDocument = true; });
  const navigations = countNavigations(page);
  const killedAt = Date.now();
  await control("POST", `/nodes/${victimNode}/etcd/kill`);
  t.after(() => control("POST", `/nodes/${victimNode}/etcd/start`).catch(() => {}));

  await page.waitForFunction(
    (id) => document.querySelector(`tr[data-testid="${id}"] [data-testid="member-state"]`)?.textContent.trim().endsWith("unhealthy"),
    victimRow,
    { timeout: SHOWS_KILL_WITHIN_MS },
  );
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs <= SHOWS_KILL_WITHIN_MS, `shown after ${tookMs} ms`);
  assert.equal(navigations.count, 0, "the page did not navigate or reload");
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "still the same document");
  assert.match(await memberState(page, victimRow).textContent(), /unhealthy/);
  assert.equal(await page.locator('[data-testid="verdict"]').getAttribute("data-level"), "degraded");
  for (const other of await rows.all()) {
    if ((await other.getAttribute("data-testid")) !== victimRow) {
      assert.doesNotMatch(await other.locator('[data-testid="member-state"]').textContent(), /unhealthy/);
    }
  }
  await screenshotBothThemes(page, "health-member-down");

  // Bring it back and watch the console notice that too.
  await control("POST", `/nodes/${victimNode}/etcd/start`);
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 60_000 });
  assert.equal(navigations.count, 0, "recovery also arrived without a reload");
  assert.deepEqual(problems, [], "no errors in the browser console");
});
