// The incident page's forms that a plain recovery never shows, on their own console and
// emulated cluster (127.0.84.x), in three browser sessions (operator, approver, admin):
//   - an approver denies a request (a reason is required) and the denial is in the timeline;
//   - the console is killed (SIGKILL) while a reset is claimed but not sent (a failpoint holds it
//     there); the restarted console marks the step uncertain and never sends it; the operator
//     checks and sends it back to planned (a reason is required), and it runs once;
//   - an admin breaks glass on their own request (a reason is required): the approval and the
//     timeline carry the loud mark for everyone, and the audit trail has it; the node then
//     changes (its etcd comes back), so the run is refused and the step says the approval is void;
//   - a node whose Talos API is down at the pre-checks is planned for re-creation from its
//     machine-config backup: the admin finds the backup through the step, the operator marks it
//     re-created (a reason is required); the wait for Preparing then shows its deadline and the
//     node that does not answer, and the operator abandons the recovery.
// This test starts the console itself (it must kill and restart it): TALOS_DR_BIN, FORMS_* and
// RECOVERY_OPERATOR / RECOVERY_APPROVER / RECOVERY_ADMIN come from scripts/browser-tests.sh.
// Screenshots: $SCREENSHOT_DIR/forms-*.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";

import { launchBrowser } from "./browser.mjs";
import {
  CLUSTER, apiPost, chooseSnapshot, clusterNodes, clusterPage, control, pageProblems, passPrechecks,
  recoveryStack, shooter, signedIn, startIncident, stepCard, steps, waitHealthy, waitQuorumLost, waitStepState,
} from "./recovery-flow.mjs";

const FAILPOINT = "reset_node:after_claim";
let browser;
let stack;
let console_ = null;

/** Starts the console on the stack's address and data; resolves once its API answers. */
async function startConsole(env = {}) {
  const tc = `${stack.state}/talosconfig`;
  const log = openSync(`${stack.state}/console.log`, "a");
  const child = spawn(process.env.TALOS_DR_BIN, [
    "serve", "--listen", new URL(stack.url).host,
    "--cluster", `${CLUSTER}=${tc}#emulated-admin`,
    "--cluster-credential", `${CLUSTER}:reader=${tc}#emulated-reader`,
    "--cluster-credential", `${CLUSTER}:etcd_backup=${tc}#emulated-etcd-backup`,
    "--cluster-credential", `${CLUSTER}:admin=${tc}#emulated-admin`,
    "--data-dir", `${stack.state}/console-data`,
  ], { env: { ...process.env, ...env }, stdio: ["ignore", log, log] });
  closeSync(log);
  const exited = once(child, "exit");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const up = await fetch(new URL("/api/session", stack.url)).then(() => true, () => false);
    if (up) {
      console_ = { child, exited };
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  child.kill("SIGKILL");
  assert.fail(`the console did not answer; see ${stack.state}/console.log`);
}

async function killConsole(signal) {
  if (!console_) return;
  const { child, exited } = console_;
  console_ = null;
  if (child.exitCode === null) child.kill(signal);
  await exited;
}

before(async () => {
  stack = recoveryStack("FORMS");
  assert.ok(process.env.TALOS_DR_BIN, "TALOS_DR_BIN must name the talos-dr binary");
  assert.ok(process.env.FORMS_ADMIN_PASSWORD && process.env.RECOVERY_ADMIN, "FORMS_ADMIN_PASSWORD / RECOVERY_ADMIN must name an admin");
  await startConsole({ TALOS_DR_FAILPOINTS: FAILPOINT, TALOS_DR_FAILPOINT_FILE: `${stack.state}/failpoints.log` });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await killConsole("SIGTERM");
});

const timelineEvent = (page, kind, text) =>
  page.locator(`[data-testid="timeline-event"][data-kind="${kind}"]`, text ? { hasText: text } : {});

async function request(page, id, reason) {
  const card = stepCard(page, id);
  await card.locator('[data-testid="step-request-reason"]').fill(reason);
  await card.locator('[data-testid="step-request"]').click();
  await waitStepState(page, id, ["requested"]);
}

async function approve(page, id) {
  await stepCard(page, id).locator('[data-testid="step-approve"]').click();
  await waitStepState(page, id, ["approved"]);
}

async function run(page, id, host) {
  const card = stepCard(page, id);
  await card.locator('[data-testid="step-run-confirm"]').fill(host);
  await card.locator('[data-testid="step-run"]').click();
}

/** Waits until the console's own health view has the node's etcd service in `state`. */
async function consoleSeesEtcd(page, ip, state) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await page.request.get(new URL(`/api/clusters/${CLUSTER}/health`, stack.url).href);
    const node = res.ok() ? (await res.json()).health?.nodes?.find((n) => n.node === ip) : undefined;
    if (node?.etcd_service?.state === state) return;
    await page.waitForTimeout(250);
  }
  assert.fail(`the console did not see etcd ${state} on ${ip}`);
}

async function resetCalls(ip) {
  return (await clusterNodes(stack)).find((n) => n.ip === ip).calls.reset;
}

test("deny, a step made uncertain by a killed console, break-glass and a node to re-create, all in the UI", async (t) => {
  const shot = shooter("forms");
  const op = await signedIn(browser, stack.url, stack.operator, stack.operatorPassword);
  const ap = await signedIn(browser, stack.url, stack.approver, stack.approverPassword);
  const admin = await signedIn(browser, stack.url, process.env.RECOVERY_ADMIN, process.env.FORMS_ADMIN_PASSWORD);
  t.after(async () => {
    for (const s of [op, ap, admin]) await s.context.close();
  });
  const nodes = await clusterNodes(stack);
  assert.equal(nodes.length, 3);
  const [a, b, c] = nodes;

  // Machine configs backed up and a snapshot while healthy; then etcd gone on two nodes and the
  // third node's Talos API down (it "died").
  await clusterPage(op.page, stack.url);
  await waitHealthy(op.page);
  const backups = await apiPost(admin.page, stack.url, `/api/clusters/${CLUSTER}/machine-configs`, {});
  assert.ok(JSON.stringify(backups).includes(c.ip), "the backup covers the node that will die");
  const taken = await apiPost(op.page, stack.url, `/api/clusters/${CLUSTER}/snapshots`, {});
  assert.equal(taken.snapshot.failure ?? null, null);
  await control(stack, "POST", `/nodes/${b.ip}/etcd/kill`);
  await control(stack, "POST", `/nodes/${c.ip}/etcd/kill`);
  await waitQuorumLost(op.page);
  await control(stack, "POST", `/nodes/${c.ip}/api/stop`);
  // With one node silent the console cannot tell quorum for sure: it says so.
  await op.page.locator('[data-testid="verdict"][data-level="unknown"]').waitFor({ timeout: 60_000 });
  assert.match(await op.page.locator('[data-testid="verdict"]').textContent(), new RegExp(`Talos API on ${c.ip.replaceAll(".", "\\.")} is unreachable`));

  await startIncident(stack, op, ap, shot, "two etcd members down, cp-3 does not answer at all");
  await admin.page.goto(op.page.url());
  await admin.page.locator('[data-testid="incident-head"]').waitFor({ timeout: 15_000 });
  await passPrechecks(op, shot, 3);
  assert.match(await op.page.locator(`[data-testid="precheck-node"][data-node="${c.ip}"]`).textContent(), /unreachable/);
  const plan = await chooseSnapshot(op, shot, taken.snapshot.id);
  const find = (kind, host) => plan.find((s) => s.kind === kind && s.host === host);
  const resetA = find("reset_node", a.hostname);
  const resetB = find("reset_node", b.hostname);
  const recreateC = find("recreate_node", c.hostname);
  assert.ok(resetA && resetB && recreateC, `reset ${a.hostname} and ${b.hostname}, re-create ${c.hostname}: ${JSON.stringify(plan)}`);
  assert.equal(find("reset_node", c.hostname), undefined, "an unreachable node is not reset");

  // Deny: the approver must say why; the step goes back to planned and the timeline says so.
  await request(op.page, resetA.id, "wipe cp-1 first");
  const apA = stepCard(ap.page, resetA.id);
  await apA.locator('[data-testid="step-deny"]').click();
  assert.equal(await apA.locator('[data-testid="step-approval-error"]').textContent(), "Say why you deny it.");
  assert.equal((await steps(ap.page)).find((s) => s.id === resetA.id).state, "requested", "nothing sent without a reason");
  await apA.locator('[data-testid="step-approval-reason"]').fill("cp-1 holds the newest data: take a raw copy first");
  await apA.locator('[data-testid="step-deny"]').click();
  await waitStepState(op.page, resetA.id, ["planned"]);
  const denial = timelineEvent(op.page, "denial", "take a raw copy first");
  await denial.waitFor({ timeout: 10_000 });
  assert.equal(await denial.getAttribute("data-loud"), "true");
  assert.match(await denial.textContent(), new RegExp(`${stack.approver}.*denies`));
  await shot(op.page, "denied");

  // Asked again and approved; the run stops after the claim (failpoint) and the console dies.
  await request(op.page, resetA.id, "the snapshot is recent enough; wiping cp-1");
  await approve(ap.page, resetA.id);
  await run(op.page, resetA.id, a.hostname);
  const deadline = Date.now() + 30_000;
  let reached = "";
  while (!reached.includes(FAILPOINT) && Date.now() < deadline) {
    reached = await readFile(`${stack.state}/failpoints.log`, "utf8").catch(() => "");
    await op.page.waitForTimeout(200);
  }
  assert.ok(reached.includes(FAILPOINT), "the console stopped after claiming the reset");
  await waitStepState(op.page, resetA.id, ["claimed"]);
  await shot(op.page, "claimed-before-kill");
  await killConsole("SIGKILL");
  await startConsole();

  // The restarted console cannot tell whether the reset reached cp-1: uncertain, never re-sent.
  await waitStepState(op.page, resetA.id, ["uncertain"], 120_000);
  const cardA = stepCard(op.page, resetA.id);
  assert.match(await cardA.locator('[data-testid="step-detail"]').textContent(), /boot id/);
  assert.equal(await resetCalls(a.ip), 0, "the reset never reached cp-1");
  assert.equal(await stepCard(ap.page, resetA.id).locator('[data-testid="step-resolve-form"]').count(), 0, "an approver does not resolve");
  await shot(op.page, "uncertain");
  await cardA.locator('[data-testid="step-resolve-retry"]').click();
  assert.equal(await cardA.locator('[data-testid="step-resolve-error"]').textContent(), "Say what you checked on the node.");
  await cardA.locator('[data-testid="step-resolve-reason"]').fill("talosctl -n cp-1 dmesg: no reset; boot id unchanged");
  await cardA.locator('[data-testid="step-resolve-retry"]').click();
  await waitStepState(op.page, resetA.id, ["planned"]);
  await timelineEvent(op.page, "step_finished", "boot id unchanged").waitFor({ timeout: 10_000 });
  await request(op.page, resetA.id, "sent back after the restart; wiping cp-1 now");
  await approve(ap.page, resetA.id);
  await run(op.page, resetA.id, a.hostname);
  await waitStepState(op.page, resetA.id, ["done"], 120_000);
  assert.equal(await resetCalls(a.ip), 1, "cp-1 was reset exactly once");

  // Break-glass: the admin asks and approves their own request, with a reason, loudly.
  await request(admin.page, resetB.id, "no approver answers the pager");
  const glassCard = stepCard(admin.page, resetB.id);
  assert.equal(await glassCard.locator('[data-testid="step-approve"]').count(), 0, "no plain approval of one's own request");
  await glassCard.locator('[data-testid="step-break-glass"]').click();
  assert.match(await glassCard.locator('[data-testid="step-approval-error"]').textContent(), /^Break-glass needs a reason/);
  await glassCard.locator('[data-testid="step-approval-reason"]').fill("approver unreachable for 20 minutes; cluster down");
  await glassCard.locator('[data-testid="step-break-glass"]').click();
  await waitStepState(admin.page, resetB.id, ["approved"]);
  for (const page of [op.page, ap.page, admin.page]) {
    const mark = timelineEvent(page, "break_glass");
    await mark.waitFor({ timeout: 10_000 });
    assert.equal(await mark.getAttribute("data-loud"), "true");
    assert.match(await mark.textContent(), /BREAK-GLASS: recovery-admin approves their own request.*approver unreachable/);
    const approval = stepCard(page, resetB.id).locator('[data-testid="step-approval"][data-break-glass="true"]');
    await approval.waitFor({ timeout: 10_000 });
    assert.match(await approval.textContent(), /BREAK-GLASS self-approval by recovery-admin/);
  }
  await shot(ap.page, "break-glass-seen-by-approver");

  // cp-2 changes after the approval (its etcd comes back): the approval is void, the run is
  // refused, and the step says why and shows the approval as no longer standing.
  await control(stack, "POST", `/nodes/${b.ip}/etcd/start`);
  await consoleSeesEtcd(admin.page, b.ip, "Running");
  await run(admin.page, resetB.id, b.hostname);
  await waitStepState(admin.page, resetB.id, ["planned"]);
  assert.match(await glassCard.locator('[data-testid="step-detail"]').textContent(),
    /^Not run: the node changed since the approval \(approved: .*etcd=Waiting.*; now: .*etcd=Running.*\): request the step again$/);
  const voided = glassCard.locator('[data-testid="step-approval"][data-past-round="true"]');
  assert.match(await voided.textContent(), /BREAK-GLASS self-approval by recovery-admin .*no longer stands: request the step again/);
  assert.equal(await resetCalls(b.ip), 0, "nothing sent on a void approval");
  await shot(admin.page, "approval-voided");
  await request(admin.page, resetB.id, "cp-2's etcd restarted without quorum; wiping it as planned");
  await glassCard.locator('[data-testid="step-approval-reason"]').fill("still no approver; cp-2 is part of the restore");
  await glassCard.locator('[data-testid="step-break-glass"]').click();
  await waitStepState(admin.page, resetB.id, ["approved"]);
  await run(admin.page, resetB.id, b.hostname);
  await waitStepState(admin.page, resetB.id, ["done"], 120_000);
  assert.equal(await resetCalls(b.ip), 1);

  // The node to re-create: the admin is pointed at its machine-config backup.
  const recreateOp = stepCard(op.page, recreateC.id);
  await recreateOp.locator('[data-testid="step-recreate-form"]').waitFor({ timeout: 10_000 });
  assert.equal(await recreateOp.locator('[data-testid="machine-config-backups"]').count(), 0, "only admins get the backups link");
  assert.match(await recreateOp.locator('[data-testid="step-recreate"]').textContent(), new RegExp(`^Mark ${c.hostname} \\(${c.ip.replaceAll(".", "\\.")}\\) re-created$`));
  await shot(op.page, "recreate-form");
  const incidentUrl = admin.page.url();
  await stepCard(admin.page, recreateC.id).locator('[data-testid="machine-config-backups"]').click();
  const backupRow = admin.page.locator('[data-testid="machine-config-row"]', { hasText: c.ip });
  await backupRow.first().waitFor({ timeout: 15_000 });
  const download = admin.page.waitForEvent("download", { timeout: 30_000 });
  await backupRow.first().locator('[data-testid="machine-config-download"]').click();
  const yaml = await readFile(await (await download).path(), "utf8");
  assert.match(yaml, /^version: v1alpha1$/m, "the backup downloads as the node's machine config");
  await admin.page.goto(incidentUrl);

  await recreateOp.locator('[data-testid="step-recreate"]').click();
  assert.equal(await recreateOp.locator('[data-testid="step-recreate-error"]').textContent(), "Say how the node was re-created.");
  await recreateOp.locator('[data-testid="step-recreate-reason"]').fill("new machine, applied the cp-3 backup with talosctl apply-config");
  await recreateOp.locator('[data-testid="step-recreate"]').click();
  await waitStepState(op.page, recreateC.id, ["done"]);
  assert.match(await recreateOp.locator('[data-testid="step-detail"]').textContent(), /marked done by recovery-operator: new machine/);

  // The emulator cannot boot a fresh machine: cp-3 never answers, and the wait says so, with its
  // deadline, rather than going on.
  const wait = (await steps(op.page)).find((s) => s.kind === "wait_preparing");
  await waitStepState(op.page, wait.id, ["claimed"], 30_000);
  const waitCard = stepCard(op.page, wait.id);
  await waitCard.locator('[data-testid="step-deadline"]').waitFor({ timeout: 15_000 });
  await waitCard.locator('[data-testid="step-detail"]', { hasText: `${c.ip}: no answer` }).waitFor({ timeout: 30_000 });
  await shot(op.page, "waiting-for-preparing");

  // Abandoned, with a summary.
  assert.match(await op.page.locator('[data-testid="close-abandon-warning"]').textContent(), /abandons the recovery/);
  await op.page.locator('[data-testid="close-submit"]').click();
  assert.equal(await op.page.locator('[data-testid="close-error"]').textContent(), "A summary is required to close the incident.");
  await op.page.locator('[data-testid="close-summary"]').fill("cp-3's replacement did not come up; continuing by hand");
  await op.page.locator('[data-testid="close-submit"]').click();
  await op.page.waitForFunction(
    () => document.querySelector('[data-testid="incident-head"]')?.dataset.status !== "open"
      || !/summary is required/.test(document.querySelector('[data-testid="close-error"]')?.textContent ?? "summary is required"),
    null,
    { timeout: 15_000 },
  );
  await shot(op.page, "abandoned");
  assert.equal(await op.page.locator('[data-testid="incident-head"]').getAttribute("data-status"), "abandoned",
    await op.page.locator('[data-testid="close-error"]').textContent().catch(() => ""));
  // The wait did not hold the incident open; it is marked stopped, not left running.
  await waitStepState(op.page, wait.id, ["failed"], 10_000);
  assert.match(await waitCard.locator('[data-testid="step-detail"]').textContent(), /stopped by recovery-operator: the recovery was abandoned/);

  // The audit trail has the break-glass approval.
  await admin.page.goto(new URL("/audit", stack.url).href);
  const glassRows = admin.page.locator('tr[data-testid="audit-row"][data-action="break_glass_approval"]');
  await glassRows.first().waitFor({ timeout: 15_000 });
  assert.equal(await glassRows.count(), 2, "both break-glass approvals are in the audit trail");
  assert.match(await glassRows.first().textContent(), /recovery-admin/);
  await shot(admin.page, "audit-break-glass");

  // The console restart drops the streams for a moment; anything else is an error.
  const unexpected = (s) => pageProblems(s).filter((p) => !/incidents\/.+\/(stream|events)/.test(p));
  assert.deepEqual(unexpected(op), [], "no console errors for the operator");
  assert.deepEqual(unexpected(ap), [], "no console errors for the approver");
  assert.deepEqual(unexpected(admin), [], "no console errors for the admin");
});
