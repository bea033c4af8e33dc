// The web UI against a stand-in API (mock-server.mjs) whose health and stream a test controls:
// behaviour that is hard to provoke on a real cluster on demand (a dropped stream, quorum
// loss, an unknown cluster) and the theme switch. Needs only a built dist/.

import { after, before, beforeEach, afterEach, test } from "node:test";
import assert from "node:assert/strict";

import { countNavigations, launchBrowser, openPage, screenshot, screenshotBothThemes } from "./browser.mjs";
import { MOCK_PASSWORD, MOCK_USER, startMockServer } from "./mock-server.mjs";

let browser;
let mock;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});
beforeEach(async () => {
  mock = await startMockServer();
});
afterEach(async () => {
  await mock?.close();
});

const verdict = (page) => page.locator('[data-testid="verdict"]');
const connection = (page) => page.locator('[data-testid="connection"]');

async function openHealthy(page) {
  await page.goto(mock.url);
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 10_000 });
}

test("stream updates change the page in place: one member down, then quorum lost but restorable", async () => {
  const { page, problems } = await openPage(browser);
  await openHealthy(page);
  const navigations = countNavigations(page);
  const row = page.locator('tr[data-testid="member-cp-2"]');
  const rowHandle = await row.elementHandle();

  assert.equal(await page.title(), "healthy · emulated · talos-dr");
  mock.setScenario("one_etcd_down");
  await page.locator('[data-testid="verdict"][data-level="degraded"]').waitFor({ timeout: 5_000 });
  assert.equal(await page.title(), "degraded · emulated · talos-dr");
  assert.equal((await row.locator('[data-testid="member-state"]').textContent()).trim(), "✖unhealthy");
  assert.equal(await row.getAttribute("data-state"), "unhealthy");
  assert.match(await row.textContent(), /etcd service on 127\.0\.1\.3 is Failed/);
  assert.match(await page.locator('[data-testid="verdict-reasons"]').textContent(), /cp-2/);
  assert.equal(
    await page.locator('[data-testid="verdict-next-move"]').textContent(),
    "quorum holds: fix the broken member cp-2 (127.0.1.3): etcd service on 127.0.1.3 is Failed",
  );
  assert.equal(await page.locator('[data-testid="quorum-healthy"]').textContent(), "2");
  const node = page.locator('tr[data-testid="node-127.0.1.3"]');
  assert.match(await node.locator('[data-testid="etcd-service-state"]').textContent(), /Failed/);
  assert.match(await node.locator('[data-testid="call-failures"]').textContent(), /EtcdStatus/);
  // Rows are updated, not rebuilt: the same element is still in the document.
  assert.equal(await rowHandle.evaluate((el) => el.isConnected), true);
  await screenshotBothThemes(page, "mock-member-down");

  mock.setScenario("quorum_restorable");
  await page.locator('[data-testid="verdict"][data-level="quorum restorable"]').waitFor({ timeout: 5_000 });
  assert.match(await verdict(page).textContent(), /etcd accepts no writes/);
  assert.equal(
    await page.locator('[data-testid="quorum-words"]').textContent(),
    "3 members, 1 healthy, quorum needs 2: lost",
  );
  assert.match(
    await page.locator('[data-testid="verdict-next-move"]').textContent(),
    /bring back 1 of: cp-2 \(127\.0\.1\.3\), cp-3 \(127\.0\.1\.4\)/,
  );
  assert.match(await page.locator('[data-testid="findings"]').textContent(), /127\.0\.1\.2 sees no leader/);
  assert.equal(await page.locator('[data-testid="quorum-leader"]').textContent(), "none");
  assert.equal(await page.locator('tr[data-testid^="member-"][data-state="unhealthy"]').count(), 3);
  await screenshotBothThemes(page, "mock-quorum-lost");

  assert.equal(navigations.count, 0, "no reload or navigation");
  assert.deepEqual(problems, []);
});

test("the evidence board points out a NOSPACE alarm and a split member list, with the next move", async () => {
  const { page, problems } = await openPage(browser);
  await openHealthy(page);
  assert.equal(await page.locator('[data-testid="findings"]').count(), 0, "no findings on a healthy cluster");
  assert.equal(
    await page.locator('[data-testid="verdict-next-move"]').textContent(),
    "nothing to fix; keep taking etcd snapshots",
  );
  const seen = page.locator('tr[data-testid="node-127.0.1.4"] [data-testid="members-seen"]');
  assert.match(await seen.textContent(), /sees\s*cp-1, cp-2, cp-3/);

  mock.setScenario("nospace");
  await page.locator('[data-testid="verdict"][data-level="degraded"]').waitFor({ timeout: 5_000 });
  assert.match(
    await page.locator('[data-testid="findings"]').textContent(),
    /NOSPACE alarm on member 8e9e05c52164694d on cp-1 \(127\.0\.1\.2\)/,
  );
  assert.match(
    await page.locator('[data-testid="verdict-next-move"]').textContent(),
    /talosctl -n 127\.0\.1\.2 etcd alarm disarm/,
  );

  mock.setScenario("split_member_lists");
  await page.locator('[data-testid="findings"] li[data-kind="split member lists"]').waitFor({ timeout: 5_000 });
  assert.equal(
    await page.locator('[data-testid="findings"] li[data-kind="split member lists"]').textContent(),
    "split member lists: member lists disagree: 127.0.1.2 sees 3 (cp-1, cp-2, cp-3); 127.0.1.3 sees 3 (cp-1, cp-2, cp-3); 127.0.1.4 sees 1 (cp-3)",
  );
  assert.match(await seen.textContent(), /sees\s*cp-3$/);
  assert.equal(
    await page.locator('[data-testid="quorum-words"]').textContent(),
    "3 members, 2 healthy, quorum needs 2: holds, one more failure loses it",
  );
  assert.match(await page.locator('[data-testid="verdict-next-move"]').textContent(), /^quorum holds: fix the split/);
  await screenshotBothThemes(page, "mock-split-member-lists");
  assert.deepEqual(problems, []);
});

test("a dropped stream marks the data stale and keeps it; it goes live again by itself", async () => {
  const { page, problems } = await openPage(browser);
  await openHealthy(page);

  mock.refuseStreams(true);
  mock.dropStreams();
  await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
  await page.locator('[data-testid="stale-notice"]').waitFor({ timeout: 5_000 });
  assert.match(await page.locator('[data-testid="stale-notice"]').textContent(), /stale/);
  assert.equal(await page.locator('[data-testid="health-board"]').getAttribute("data-stale"), "true");
  // The last data stays on screen.
  assert.equal(await page.locator('tr[data-testid^="member-"]').count(), 3);
  assert.equal(await verdict(page).getAttribute("data-level"), "healthy");
  await screenshotBothThemes(page, "mock-stream-down");

  // While down, the page cannot learn of changes; once the stream is back it shows them.
  mock.setScenario("one_etcd_down");
  mock.refuseStreams(false);
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid="verdict"][data-level="degraded"]').waitFor({ timeout: 5_000 });
  assert.equal(await page.locator('[data-testid="stale-notice"]').count(), 0);
  assert.equal(await page.locator('[data-testid="health-board"]').getAttribute("data-stale"), "false");
  assert.equal(mock.openStreams(), 1, "exactly one stream after reconnecting");
  assert.deepEqual(problems, []);
});

test("the theme switch overrides the system setting and is remembered", async () => {
  const { page, problems } = await openPage(browser, { colorScheme: "light" });
  await openHealthy(page);
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const light = await background();

  await page.locator('[data-testid="theme-dark"]').click();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  const dark = await background();
  assert.notEqual(dark, light);

  await page.reload();
  await page.locator('[data-testid="verdict"]').waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  assert.equal(await background(), dark);
  assert.equal(await page.locator('[data-testid="theme-dark"]').getAttribute("aria-pressed"), "true");

  // Keyboard reachable: the switch takes focus and Enter activates it.
  await page.locator('[data-testid="theme-auto"]').focus();
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), undefined);
  assert.equal(await background(), light);
  assert.deepEqual(problems, []);
});

test("an unknown cluster shows the console's error message", async () => {
  const { page } = await openPage(browser);
  await page.goto(`${mock.url}/clusters/nope`);
  const error = page.locator('[data-testid="load-error"]');
  await error.waitFor({ timeout: 10_000 });
  assert.match(await error.textContent(), /no cluster named nope/);
  // Nothing will ever stream for it, so the page stops trying instead of "reconnecting".
  await page.locator('[data-testid="connection"][data-state="not watching"]').waitFor({ timeout: 5_000 });
  await page.waitForTimeout(3_500);
  assert.equal(mock.openStreams(), 0);
  await screenshot(page, "mock-unknown-cluster-light");
});

test("before the console's first poll the page says so, then shows health as soon as it streams", async () => {
  await mock.close();
  mock = await startMockServer({ polled: false });
  const { page, problems } = await openPage(browser);
  await page.goto(mock.url);
  const error = page.locator('[data-testid="load-error"]');
  await error.waitFor({ timeout: 10_000 });
  assert.match(await error.textContent(), /first poll has not finished/);
  const navigations = countNavigations(page);

  mock.setScenario("healthy");
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 10_000 });
  assert.equal(await error.count(), 0, "the error is gone once health arrived");
  assert.equal(await page.locator('tr[data-testid^="member-"]').count(), 3);
  assert.equal(navigations.count, 0);
  assert.deepEqual(problems, []);
});

test("the page fits a laptop screen without horizontal scrolling of the page", async () => {
  const { page } = await openPage(browser, { width: 1024, height: 700 });
  await openHealthy(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `page is ${overflow} px wider than a 1024 px window`);
  // Tables scroll inside their panel when they must; at 1024 px none should have to.
  const hidden = await page.$$eval(".table-wrap", (els) => els.map((e) => e.scrollWidth - e.clientWidth));
  assert.deepEqual(hidden, [0, 0], "members and nodes tables fit without scrolling");
  await screenshot(page, "mock-laptop-1024-light");
});

test("signed out: the sign-in page, then the page asked for; an expired session asks again", async () => {
  await mock.close();
  mock = await startMockServer({ signedIn: false });
  const { page, problems } = await openPage(browser);
  await page.goto(`${mock.url}/clusters/emulated`);
  await page.waitForURL(/\/login\?next=%2Fclusters%2Femulated$/, { timeout: 10_000 });
  assert.equal(await page.title(), "Sign in · talos-dr");

  await page.locator('[data-testid="login-username"]').fill(MOCK_USER);
  await page.locator('[data-testid="login-password"]').fill("wrong");
  await page.locator('[data-testid="login-submit"]').click();
  await page.locator('[data-testid="login-error"]').waitFor({ timeout: 5_000 });
  assert.equal((await page.locator('[data-testid="login-error"]').textContent()).trim(), "wrong username or password");
  await page.locator('[data-testid="login-password"]').fill(MOCK_PASSWORD);
  await page.locator('[data-testid="login-submit"]').click();

  await page.waitForURL(`${mock.url}/clusters/emulated`, { timeout: 10_000 });
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 10_000 });
  assert.equal((await page.locator('[data-testid="session-user"]').textContent()).trim(), MOCK_USER);
  await screenshot(page, "mock-signed-in");

  // The session ends on the server side; the next stream reconnect finds out.
  mock.signOut();
  mock.dropStreams();
  await page.waitForURL(/\/login\?next=%2Fclusters%2Femulated$/, { timeout: 15_000 });
  await page.locator('[data-testid="login-form"]').waitFor();
  assert.deepEqual(problems, []);
});
