// Team access against the real console and an emulated three-node cluster: what each role is
// offered (a viewer gets no audit trail, an all-roles user reads the sign-ins there), and two
// people on the same health page who both see a killed etcd member at nearly the same moment
// and see each other as viewers. Needs TALOS_DR_URL, EMULATOR_CONTROL, TALOS_DR_USER /
// TALOS_DR_PASSWORD (every role) and TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD (viewer only);
// scripts/browser-tests.sh sets them all.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, openPage, screenshot, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CONTROL = process.env.EMULATOR_CONTROL;
const USER = process.env.TALOS_DR_USER;
const VIEWER = process.env.TALOS_DR_VIEWER;
const VIEWER_PASSWORD = process.env.TALOS_DR_VIEWER_PASSWORD;
const OPERATOR = process.env.TALOS_DR_OPERATOR;
const OPERATOR_PASSWORD = process.env.TALOS_DR_OPERATOR_PASSWORD;
const SHOWS_KILL_WITHIN_MS = 10_000;
const BROWSERS_AGREE_WITHIN_MS = 2_000;

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(CONTROL, "EMULATOR_CONTROL must name the emulator's control address");
  assert.ok(USER, "TALOS_DR_USER must name a console user with every role");
  assert.ok(VIEWER && VIEWER_PASSWORD, "TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD must name a viewer-only user");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD must name a viewer+operator user");
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

test("a viewer is offered no audit trail, and the console refuses it with a clear message", async () => {
  const { context, page, problems } = await openPage(browser);
  await signIn(page, CONSOLE, VIEWER, VIEWER_PASSWORD);
  await page.goto(new URL("/fleet", CONSOLE).href);
  await page.locator('[data-testid="fleet-page"]').waitFor();
  assert.equal(await page.locator('[data-testid="nav-audit"]').count(), 0, "no Audit link for a viewer");
  assert.equal(await page.locator('[data-testid="nav-users"]').count(), 0, "no Users link for a viewer");

  await page.goto(new URL("/audit", CONSOLE).href);
  const refusal = page.locator('[data-testid="audit-error"]');
  await refusal.waitFor({ timeout: 10_000 });
  const text = await refusal.textContent();
  assert.match(text, /Not allowed/);
  assert.match(text, /HTTP 403/);
  assert.match(text, /approver|admin/);
  assert.equal(await page.locator('[data-testid="audit-entries"]').count(), 0, "no entries shown");
  assert.equal(await page.locator('[data-testid="audit-export"]').isVisible(), false, "no export offered");
  await screenshot(page, "team-viewer-audit-refused");
  assert.deepEqual(problems, []);
  await context.close();
});

test("an operator is offered the snapshot actions and a viewer only the history", async () => {
  for (const [user, password, offered] of [
    [OPERATOR, OPERATOR_PASSWORD, true],
    [VIEWER, VIEWER_PASSWORD, false],
  ]) {
    const { context, page, problems } = await openPage(browser);
    await signIn(page, CONSOLE, user, password);
    await page.goto(new URL("/clusters/emulated/snapshots", CONSOLE).href);
    await page.locator('[data-testid="snapshots-page"]').waitFor({ timeout: 10_000 });
    // The history itself loads for both; wait for it so a slow render is not read as "hidden".
    await page.waitForFunction(() => !document.querySelector('[data-testid="snapshots-page"] .loading'));
    assert.equal(await page.locator('[data-testid="take-snapshot"]').count(), offered ? 1 : 0, `${user}: Take snapshot offered = ${offered}`);
    assert.equal(await page.locator('[data-testid="take-raw-copy"]').count(), offered ? 1 : 0, `${user}: raw copy offered = ${offered}`);
    assert.equal(await page.locator('[data-testid="nav-audit"]').count(), 0, `${user}: no Audit link`);
    await screenshot(page, `team-snapshots-${offered ? "operator" : "viewer"}`);
    assert.deepEqual(problems, []);
    await context.close();
  }
});

test("an all-roles user reads the sign-ins in the audit trail and can filter them", async () => {
  const { context, page, problems } = await openPage(browser);
  await signIn(page, CONSOLE);
  const link = page.locator('[data-testid="nav-audit"]');
  await link.waitFor();
  await link.click();
  await page.locator('[data-testid="audit-entries"]').waitFor({ timeout: 10_000 });
  const actions = await page.locator('[data-testid="audit-action"]').allTextContents();
  assert.ok(actions.includes("login"), `login entries listed: ${actions.join(", ")}`);
  const actors = await page.locator('tr[data-action="login"] [data-testid="audit-actor"]').allTextContents();
  assert.ok(actors.includes(USER), `${USER}'s sign-in is listed: ${actors.join(", ")}`);
  assert.equal(await page.locator('[data-testid="audit-export"]').getAttribute("href"), "/api/audit/export");

  await page.locator('input[name="actor"]').fill(USER);
  await page.locator('input[name="action"]').fill("login");
  await page.locator('[data-testid="audit-apply"]').click();
  await page.waitForFunction(
    (user) => {
      const rows = [...document.querySelectorAll('[data-testid="audit-row"]')];
      return rows.length > 0 && rows.every((r) => r.dataset.action === "login"
        && r.querySelector('[data-testid="audit-actor"]').textContent.trim() === user);
    },
    USER,
    { timeout: 10_000 },
  );
  await screenshot(page, "team-audit-trail");

  // An admin also gets the user list.
  await page.locator('[data-testid="nav-users"]').click();
  await page.locator('[data-testid="users"]').waitFor({ timeout: 10_000 });
  const users = await page.locator('[data-testid="users"] tbody td.strong').allTextContents();
  assert.ok(users.includes(USER) && users.includes(VIEWER), `users listed: ${users.join(", ")}`);
  assert.deepEqual(problems, []);
  await context.close();
});

test("two people on the health page both see a killed member within 2 s of each other, and see each other", async (t) => {
  const sre = await openPage(browser);
  const viewer = await openPage(browser);
  t.after(async () => {
    await sre.context.close();
    await viewer.context.close();
  });
  await signIn(sre.page, CONSOLE);
  await signIn(viewer.page, CONSOLE, VIEWER, VIEWER_PASSWORD);
  const clusterPage = new URL("/clusters/emulated", CONSOLE).href;
  for (const { page } of [sre, viewer]) {
    await page.goto(clusterPage);
    await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 30_000 });
  }
  // Each sees the other.
  await sre.page.locator('[data-testid="other-viewers"]', { hasText: VIEWER }).waitFor({ timeout: 10_000 });
  await viewer.page.locator('[data-testid="other-viewers"]', { hasText: USER }).waitFor({ timeout: 10_000 });

  const victim = sre.page.locator('tr[data-testid^="member-"][data-leader="false"]').first();
  const victimRow = await victim.getAttribute("data-testid");
  const victimNode = await victim.getAttribute("data-node");
  assert.ok(victimNode, `member row ${victimRow} names its node`);

  const killedAt = Date.now();
  await control("POST", `/nodes/${victimNode}/etcd/kill`);
  t.after(() => control("POST", `/nodes/${victimNode}/etcd/start`).catch(() => {}));
  const shown = await Promise.all([sre.page, viewer.page].map(async (page) => {
    await page.waitForFunction(
      (id) => document.querySelector(`tr[data-testid="${id}"] [data-testid="member-state"]`)?.textContent.trim().endsWith("unhealthy"),
      victimRow,
      { timeout: SHOWS_KILL_WITHIN_MS, polling: 50 },
    );
    return Date.now() - killedAt;
  }));
  for (const ms of shown) assert.ok(ms <= SHOWS_KILL_WITHIN_MS, `shown after ${ms} ms`);
  const apart = Math.abs(shown[0] - shown[1]);
  assert.ok(apart <= BROWSERS_AGREE_WITHIN_MS, `the two browsers showed it ${apart} ms apart (${shown.join(" ms, ")} ms)`);
  console.log(`killed member shown after ${shown[0]} ms (all roles) and ${shown[1]} ms (viewer), ${apart} ms apart`);

  await screenshot(sre.page, "team-evidence-board-sre");
  await screenshot(viewer.page, "team-evidence-board-viewer");
  // The fleet says the same, with both people on the cluster.
  const fleet = await openPage(browser);
  t.after(() => fleet.context.close());
  await signIn(fleet.page, CONSOLE);
  await fleet.page.goto(new URL("/fleet", CONSOLE).href);
  const row = fleet.page.locator('[data-testid="fleet-row-emulated"]');
  await row.waitFor({ timeout: 10_000 });
  await fleet.page.waitForFunction(
    () => document.querySelector('[data-testid="fleet-row-emulated"]')?.dataset.level === "degraded",
    null,
    { timeout: 10_000 },
  );
  const viewers = await row.locator('[data-testid="fleet-viewers"]').textContent();
  assert.match(viewers, new RegExp(VIEWER));
  assert.match(viewers, new RegExp(USER));
  await screenshot(fleet.page, "team-fleet-degraded");

  await control("POST", `/nodes/${victimNode}/etcd/start`);
  for (const { page } of [sre, viewer]) {
    await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 60_000 });
  }
  for (const { problems } of [sre, viewer, fleet]) assert.deepEqual(problems, []);
});
