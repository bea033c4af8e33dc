// Two console replicas on one PostgreSQL database, each with its own browser: an operator on
// replica A and an approver on replica B work on the same incident and each sees what the other
// does, live, without reloading. Both consoles watch the same emulated three-node cluster
// (127.0.85.x); scripts/browser-tests.sh starts the PostgreSQL database, both consoles and the
// cluster. Screenshots go to $SCREENSHOT_DIR/replicas-*.png.
//
// Needs REPLICA_A_URL, REPLICA_B_URL, REPLICA_OPERATOR / REPLICA_OPERATOR_PASSWORD (viewer +
// operator) and REPLICA_APPROVER / REPLICA_APPROVER_PASSWORD (viewer + approver).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, openPage, screenshot, signIn } from "./browser.mjs";

const A = process.env.REPLICA_A_URL;
const B = process.env.REPLICA_B_URL;
const OPERATOR = process.env.REPLICA_OPERATOR;
const OPERATOR_PASSWORD = process.env.REPLICA_OPERATOR_PASSWORD;
const APPROVER = process.env.REPLICA_APPROVER;
const APPROVER_PASSWORD = process.env.REPLICA_APPROVER_PASSWORD;
const CLUSTER = "emulated";

let browser;

before(async () => {
  assert.ok(A && B, "REPLICA_A_URL and REPLICA_B_URL must name the two replicas (see scripts/browser-tests.sh)");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "REPLICA_OPERATOR / REPLICA_OPERATOR_PASSWORD must name an operator");
  assert.ok(APPROVER && APPROVER_PASSWORD, "REPLICA_APPROVER / REPLICA_APPROVER_PASSWORD must name an approver");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

async function apiPost(page, base, path, body) {
  const session = await (await page.request.get(new URL("/api/session", base).href)).json();
  const token = session.session?.csrf_token ?? session.csrf_token;
  const res = await page.request.post(new URL(path, base).href, {
    data: body,
    headers: { "X-CSRF-Token": token, Origin: new URL(base).origin },
  });
  const text = await res.text();
  assert.ok(res.ok(), `POST ${path} answered ${res.status()}: ${text}`);
  return JSON.parse(text);
}

async function stepKinds(page) {
  return page.locator('[data-testid="step"]').evaluateAll((els) => els.map((e) => e.dataset.kind));
}

test("an operator on one replica and an approver on the other share one live incident", { timeout: 5 * 60_000 }, async () => {
  const op = await openPage(browser);
  const ap = await openPage(browser);
  await signIn(op.page, A, OPERATOR, OPERATOR_PASSWORD);
  await signIn(ap.page, B, APPROVER, APPROVER_PASSWORD);

  // A snapshot taken through replica A (replica B will propose it too).
  await op.page.goto(new URL(`/clusters/${CLUSTER}`, A).href);
  await op.page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 60_000 });
  const snapshot = await apiPost(op.page, A, `/api/clusters/${CLUSTER}/snapshots`, {});
  assert.equal(snapshot.snapshot.failure ?? null, null, "the snapshot was stored");

  // The operator opens the incident on replica A.
  await op.page.locator('[data-testid="start-recovery-button"]').click();
  await op.page.locator('[data-testid="start-recovery-reason"]').fill("replica drill: both consoles on one database");
  await op.page.locator('[data-testid="start-recovery-submit"]').click();
  await op.page.locator('[data-testid="incident-page"]').waitFor({ timeout: 15_000 });
  const incidentId = await op.page.locator('[data-testid="incident-page"]').getAttribute("data-incident");
  assert.ok(incidentId, "the incident page names its incident");

  // Replica B knows it: its cluster page shows the banner and leads to the same incident.
  await ap.page.goto(new URL(`/clusters/${CLUSTER}`, B).href);
  const banner = ap.page.locator('[data-testid="open-incident-banner"]');
  await banner.waitFor({ timeout: 15_000 });
  assert.equal(await banner.getAttribute("data-id"), incidentId);
  await ap.page.locator('[data-testid="open-incident-link"]').click();
  await ap.page.locator('[data-testid="incident-head"]').waitFor({ timeout: 15_000 });
  assert.equal(await ap.page.locator('[data-testid="incident-page"]').getAttribute("data-incident"), incidentId);
  // Each sees the other watching, though they are on different replicas.
  await op.page.locator('[data-testid="incident-watchers"]', { hasText: APPROVER }).waitFor({ timeout: 15_000 });
  await ap.page.locator('[data-testid="incident-watchers"]', { hasText: OPERATOR }).waitFor({ timeout: 15_000 });
  const navigationsBefore = await ap.page.evaluate(() => performance.getEntriesByType("navigation").length);

  // The cluster is healthy, so the pre-checks stop the plan until an operator overrides them on
  // A; B's page follows without a reload.
  await op.page.locator('[data-testid="override-form"]').waitFor({ timeout: 60_000 });
  await ap.page.locator('[data-testid="precheck-verdict"]').waitFor({ timeout: 60_000 });
  await op.page.locator('[data-testid="override-reason"]').fill("drill on a healthy cluster");
  await op.page.locator('[data-testid="override-submit"]').click();
  await op.page.locator('[data-testid="precheck-overridden"]').waitFor({ timeout: 15_000 });
  await ap.page.locator('[data-testid="precheck-overridden"]').waitFor({ timeout: 15_000 });

  // Notes from either side reach the other, live.
  await op.page.locator('[data-testid="note-text"]').fill("note written on replica A");
  await op.page.locator('[data-testid="note-submit"]').click();
  await ap.page.locator('[data-testid="timeline-event"][data-kind="note"]', { hasText: "note written on replica A" })
    .waitFor({ timeout: 15_000 });
  await ap.page.locator('[data-testid="note-text"]').fill("note written on replica B");
  await ap.page.locator('[data-testid="note-submit"]').click();
  await op.page.locator('[data-testid="timeline-event"][data-kind="note"]', { hasText: "note written on replica B" })
    .waitFor({ timeout: 15_000 });

  // The snapshot is proposed on both; chosen on A, the same plan shows on both.
  for (const page of [op.page, ap.page]) {
    const proposed = page.locator('tr[data-testid="candidate"][data-proposed="true"]');
    await proposed.waitFor({ timeout: 30_000 });
    assert.equal(await proposed.getAttribute("data-id"), snapshot.snapshot.id);
  }
  await op.page.locator('[data-testid="choose-snapshot"]').click();
  for (const page of [op.page, ap.page]) {
    await page.locator('[data-testid="step"][data-kind="bootstrap"]').waitFor({ timeout: 30_000 });
  }
  const kinds = await stepKinds(op.page);
  assert.ok(kinds.includes("bootstrap"), `a plan: ${kinds.join(", ")}`);
  assert.deepEqual(await stepKinds(ap.page), kinds, "one plan, seen alike on both replicas");
  const timelineA = await op.page.locator('[data-testid="timeline-event"]').count();
  await ap.page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="timeline-event"]').length >= n,
    timelineA,
    { timeout: 15_000 },
  );
  const navigationsAfter = await ap.page.evaluate(() => performance.getEntriesByType("navigation").length);
  assert.equal(navigationsAfter, navigationsBefore, "B followed without reloading");
  await screenshot(op.page, "replicas-operator-on-a");
  await screenshot(ap.page, "replicas-approver-on-b");
  assert.deepEqual(op.problems, [], op.problems.join("\n"));
  assert.deepEqual(ap.problems, [], ap.problems.join("\n"));
  await op.context.close();
  await ap.context.close();
});
