// The staged recovery end to end, in the UI, against its own console and an emulated three-node
// cluster on real etcd (127.0.80.x, so the other browser tests keep their healthy cluster):
// keys written, a snapshot taken, more keys written, etcd killed on two nodes; then an operator
// and an approver in two headless Chromium sessions run the whole recovery from the cluster page.
// The cluster must end healthy with three members and the snapshot's data. A screenshot of every
// step goes to $SCREENSHOT_DIR/recovery-*.png.
//
// A second test opens a single-node cluster (127.0.80.10) and expects the seed document's warning
// until a snapshot is taken.
//
// Needs RECOVERY_URL, RECOVERY_CONTROL, RECOVERY_OPERATOR / RECOVERY_OPERATOR_PASSWORD (viewer +
// operator), RECOVERY_APPROVER / RECOVERY_APPROVER_PASSWORD (viewer + approver), SINGLE_URL and
// SINGLE_OPERATOR_PASSWORD (the same operator on the single-node console);
// scripts/browser-tests.sh starts both stacks and sets them. `etcdctl` reads and writes keys.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, openPage, screenshot, screenshotBothThemes, signIn } from "./browser.mjs";
import {
  DESTRUCTIVE, apiPost as apiPostOn, clusterNodes as clusterNodesOn, control as controlOn, etcdctl, stepCard, steps,
  waitStepState,
} from "./recovery-flow.mjs";

const CONSOLE = process.env.RECOVERY_URL;
const CONTROL = process.env.RECOVERY_CONTROL;
const OPERATOR = process.env.RECOVERY_OPERATOR;
const OPERATOR_PASSWORD = process.env.RECOVERY_OPERATOR_PASSWORD;
const APPROVER = process.env.RECOVERY_APPROVER;
const APPROVER_PASSWORD = process.env.RECOVERY_APPROVER_PASSWORD;
const SINGLE = process.env.SINGLE_URL;
const SINGLE_PASSWORD = process.env.SINGLE_OPERATOR_PASSWORD;
const CLUSTER = "emulated";
const FLOW_TIMEOUT_MS = 12 * 60_000;

let browser;

before(async () => {
  assert.ok(CONSOLE, "RECOVERY_URL must name the recovery test's console (see scripts/browser-tests.sh)");
  assert.ok(CONTROL, "RECOVERY_CONTROL must name its emulator's control address");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "RECOVERY_OPERATOR / RECOVERY_OPERATOR_PASSWORD must name an operator");
  assert.ok(APPROVER && APPROVER_PASSWORD, "RECOVERY_APPROVER / RECOVERY_APPROVER_PASSWORD must name an approver");
  assert.ok(SINGLE && SINGLE_PASSWORD, "SINGLE_URL / SINGLE_OPERATOR_PASSWORD must name the single-node console");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const control = (method, path) => controlOn({ control: CONTROL }, method, path);
const clusterNodes = () => clusterNodesOn({ control: CONTROL });
const apiPost = (page, path, body, base = CONSOLE) => apiPostOn(page, base, path, body);

let shots = 0;
async function shot(page, name) {
  shots += 1;
  return screenshot(page, `recovery-${String(shots).padStart(2, "0")}-${name}`);
}

test("an operator and an approver recover a cluster that lost etcd on two nodes, all in the UI", async (t) => {
  const op = await openPage(browser);
  const ap = await openPage(browser);
  t.after(async () => {
    await op.context.close();
    await ap.context.close();
  });
  await signIn(op.page, CONSOLE, OPERATOR, OPERATOR_PASSWORD);
  await signIn(ap.page, CONSOLE, APPROVER, APPROVER_PASSWORD);
  // Errors from here on are the recovery pages' (the sign-in page has its own tests).
  op.problems.length = 0;
  ap.problems.length = 0;

  // Arrange: a healthy cluster with data, a snapshot of it, then data the snapshot does not hold.
  const nodes = await clusterNodes();
  assert.equal(nodes.length, 3, "three emulated control-plane nodes");
  const [first, second, third] = nodes.map((n) => n.ip);
  await op.page.goto(new URL(`/clusters/${CLUSTER}`, CONSOLE).href);
  await op.page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 60_000 });
  assert.equal(await op.page.locator('[data-testid="single-cp-warning"]').count(), 0, "no single-node warning for three nodes");
  etcdctl(first, "put", "/registry/configmaps/default/before-snapshot", "kept");
  const taken = await apiPost(op.page, `/api/clusters/${CLUSTER}/snapshots`, {});
  assert.equal(taken.snapshot.failure ?? null, null, "the snapshot was stored");
  const snapshotId = taken.snapshot.id;
  etcdctl(first, "put", "/registry/configmaps/default/after-snapshot", "lost");

  // Break it: etcd killed on two of three nodes, quorum gone.
  await control("POST", `/nodes/${second}/etcd/kill`);
  await control("POST", `/nodes/${third}/etcd/kill`);
  await op.page.waitForFunction(
    () => ["quorum_restorable", "full_recovery_needed", "quorum restorable", "full recovery needed"]
      .includes(document.querySelector('[data-testid="verdict"]')?.dataset.level),
    null,
    { timeout: 60_000 },
  );
  await shot(op.page, "cluster-broken");

  // The operator starts the recovery from the cluster page, with a reason.
  assert.equal(await ap.page.locator('[data-testid="start-recovery-button"]').count(), 0);
  await op.page.locator('[data-testid="start-recovery-button"]').click();
  await op.page.locator('[data-testid="start-recovery-reason"]').fill("etcd down on two of three nodes; quorum lost");
  await shot(op.page, "start-recovery");
  await op.page.locator('[data-testid="start-recovery-submit"]').click();
  await op.page.locator('[data-testid="incident-page"]').waitFor({ timeout: 15_000 });
  const incidentId = await op.page.locator('[data-testid="incident-page"]').getAttribute("data-incident");
  assert.ok(incidentId, "the incident page names its incident");

  // The approver finds it through the banner on the cluster page; both see each other watching.
  await ap.page.goto(new URL(`/clusters/${CLUSTER}`, CONSOLE).href);
  const banner = ap.page.locator('[data-testid="open-incident-banner"]');
  await banner.waitFor({ timeout: 15_000 });
  assert.equal(await banner.getAttribute("data-id"), incidentId);
  await shot(ap.page, "approver-sees-banner");
  await ap.page.locator('[data-testid="open-incident-link"]').click();
  await ap.page.locator('[data-testid="incident-head"]').waitFor({ timeout: 15_000 });
  await op.page.locator('[data-testid="incident-watchers"]', { hasText: APPROVER }).waitFor({ timeout: 15_000 });
  assert.match(await op.page.locator('[data-testid="incident-status"]').textContent(), /open/);

  // Pre-checks: per-node findings and a verdict; killed etcd may still come back, so going on
  // needs an override with a reason.
  await op.page.locator('[data-testid="precheck-verdict"]').waitFor({ timeout: 60_000 });
  assert.equal(await op.page.locator('[data-testid="precheck-node"]').count(), 3, "every node checked");
  await shot(op.page, "prechecks");
  if (await op.page.locator('[data-testid="override-form"]').count()) {
    assert.equal(await ap.page.locator('[data-testid="override-form"]').count(), 0, "approvers do not override");
    await op.page.locator('[data-testid="override-reason"]').fill("practising the full restore on the emulated cluster");
    await op.page.locator('[data-testid="override-submit"]').click();
    await op.page.locator('[data-testid="precheck-overridden"]').waitFor({ timeout: 15_000 });
    await shot(op.page, "precheck-overridden");
  }

  // The snapshot: the one taken above is proposed and preselected.
  const proposed = op.page.locator('tr[data-testid="candidate"][data-proposed="true"]');
  await proposed.waitFor({ timeout: 30_000 });
  assert.equal(await proposed.getAttribute("data-id"), snapshotId, "the newest verified snapshot is proposed");
  assert.ok(await proposed.locator('[data-testid="candidate-choice"]').isChecked(), "the proposal is preselected");
  await shot(op.page, "snapshot-chooser");
  await op.page.locator('[data-testid="choose-snapshot"]').click();
  await op.page.locator('[data-testid="chosen-snapshot"]').waitFor({ timeout: 30_000 });
  await op.page.locator('[data-testid="step"]').first().waitFor({ timeout: 30_000 });
  const plan = await steps(op.page);
  const kinds = plan.map((s) => s.kind);
  assert.equal(kinds.filter((k) => k === "reset_node").length, 3, `a reset per node: ${kinds.join(", ")}`);
  assert.ok(kinds.indexOf("bootstrap") > kinds.lastIndexOf("reset_node"), "bootstrap after the resets");
  await shot(op.page, "plan");
  await screenshotBothThemes(op.page, "recovery-plan-themes");

  // A note reaches everyone watching, live.
  await op.page.locator('[data-testid="note-text"]').fill("snapshot figures checked against the schedule's last run");
  await op.page.locator('[data-testid="note-submit"]').click();
  await ap.page.locator('[data-testid="timeline-event"][data-kind="note"]', { hasText: "snapshot figures checked" })
    .waitFor({ timeout: 10_000 });

  // Every destructive step: requested by the operator, approved by the approver, run by the
  // operator with the hostname typed. Everything else the console runs itself.
  const deadline = Date.now() + FLOW_TIMEOUT_MS;
  const seenRunLabels = [];
  const shotRunning = new Set();
  let checkedWrongHostname = false;
  while (Date.now() < deadline) {
    const status = await op.page.locator('[data-testid="incident-head"]').getAttribute("data-status");
    if (status !== "open") break;
    const now = await steps(op.page);
    if (now.length > 0 && now.every((s) => s.state === "done")) {
      // The post-checks close the incident; give the console a moment to say so.
      await op.page.waitForFunction(
        () => document.querySelector('[data-testid="incident-head"]')?.dataset.status !== "open",
        null,
        { timeout: 30_000 },
      ).catch(() => {});
      break;
    }
    const broken = now.find((s) => s.state === "failed" || s.state === "uncertain");
    if (broken) {
      await shot(op.page, `step-${broken.state}`);
      const detail = await stepCard(op.page, broken.id).locator('[data-testid="step-detail"]').textContent().catch(() => "");
      assert.fail(`${broken.kind} on ${broken.host} is ${broken.state}: ${detail}`);
    }
    let acted = false;
    for (const s of now.filter((s) => DESTRUCTIVE.has(s.kind))) {
      const card = stepCard(op.page, s.id);
      if (s.state === "planned" && (await card.locator('[data-testid="step-request"]').count())) {
        assert.equal(await stepCard(ap.page, s.id).locator('[data-testid="step-request"]').count(), 0, "an approver cannot request");
        await card.locator('[data-testid="step-request-reason"]').fill(`${s.kind} on ${s.host}: part of the restore`);
        await card.locator('[data-testid="step-request"]').click();
        await waitStepState(op.page, s.id, ["requested"]);
        await shot(op.page, `requested-${s.kind}-${s.host}`);
        acted = true;
      } else if (s.state === "requested") {
        assert.equal(await card.locator('[data-testid="step-approve"]').count(), 0, "the requester is not offered approval");
        const apCard = stepCard(ap.page, s.id);
        await apCard.locator('[data-testid="step-approve"]').waitFor({ timeout: 15_000 });
        await apCard.locator('[data-testid="step-approve"]').click();
        await waitStepState(ap.page, s.id, ["approved", "claimed", "sent", "done"]);
        await shot(ap.page, `approved-${s.kind}-${s.host}`);
        acted = true;
      } else if (s.state === "approved" && (await card.locator('[data-testid="step-run"]').count())) {
        const run = card.locator('[data-testid="step-run"]');
        const label = (await run.textContent()).trim();
        seenRunLabels.push(label);
        assert.ok(label.includes(s.host), `the button names the node: ${label}`);
        if (!checkedWrongHostname) {
          await card.locator('[data-testid="step-run-confirm"]').fill(`${s.host}-typo`);
          assert.ok(await run.isDisabled(), "a wrong hostname keeps the button disabled");
          await card.locator('[data-testid="step-run-mismatch"]').waitFor();
          checkedWrongHostname = true;
        }
        await card.locator('[data-testid="step-run-confirm"]').fill(s.host);
        await shot(op.page, `confirm-${s.kind}-${s.host}`);
        await run.click();
        await waitStepState(op.page, s.id, ["claimed", "sent", "done", "failed", "uncertain"]);
        acted = true;
      }
    }
    if (!acted) {
      // Waits, the upload and the post-checks run on their own; show them as they go.
      const running = now.find((s) => ["claimed", "sent"].includes(s.state));
      if (running && !shotRunning.has(running.id)) {
        shotRunning.add(running.id);
        await shot(op.page, `running-${running.kind}`);
      }
      await op.page.waitForTimeout(1_000);
    }
  }
  assert.ok(Date.now() < deadline, "the recovery finished within the time allowed");
  await shot(op.page, "plan-done");
  const upload = plan.find((s) => s.kind === "upload_snapshot");
  assert.ok(upload, "the plan uploads the snapshot");
  assert.match(await stepCard(op.page, upload.id).locator('[data-testid="step-progress-text"]').textContent(), /^100% · /,
    "the upload's progress bar shows it complete");

  assert.ok(seenRunLabels.some((l) => /^Reset .+ \(127\.0\.80\.\d+\): wipe (EPHEMERAL|ETCD)$/.test(l)), `reset buttons: ${seenRunLabels.join(" | ")}`);
  assert.ok(seenRunLabels.some((l) => /^Bootstrap etcd on .+ from snapshot [0-9a-f]{12}/.test(l)), `bootstrap button: ${seenRunLabels.join(" | ")}`);

  // Closed: resolved by the post-checks, or by the operator with a summary.
  if ((await op.page.locator('[data-testid="incident-head"]').getAttribute("data-status")) === "open") {
    await op.page.locator('[data-testid="close-summary"]').fill("restored from the snapshot; three members healthy");
    await op.page.locator('[data-testid="close-submit"]').click();
  }
  await op.page.waitForFunction(
    () => document.querySelector('[data-testid="incident-head"]')?.dataset.status === "resolved",
    null,
    { timeout: 30_000 },
  );
  const timelineKinds = await op.page.$$eval('[data-testid="timeline-event"]', (els) => els.map((e) => e.dataset.kind));
  for (const kind of ["incident_opened", "request", "approval", "step_started", "step_finished"]) {
    assert.ok(timelineKinds.includes(kind), `the timeline has ${kind}: ${[...new Set(timelineKinds)].join(", ")}`);
  }
  await shot(op.page, "incident-resolved");
  await op.page.setViewportSize({ width: 1024, height: 768 });
  await shot(op.page, "incident-resolved-laptop");
  await op.page.setViewportSize({ width: 1280, height: 900 });
  await shot(ap.page, "incident-resolved-approver");

  // The report lists the steps with who requested, approved and ran them.
  const report = await op.page.request.get(new URL(`/api/incidents/${incidentId}/report.md`, CONSOLE).href);
  assert.equal(report.status(), 200);
  const markdown = await report.text();
  assert.ok(markdown.includes(OPERATOR) && markdown.includes(APPROVER), "the report names requester and approver");

  // The cluster's recoveries list it as resolved.
  await op.page.goto(new URL(`/clusters/${CLUSTER}/incidents`, CONSOLE).href);
  const row = op.page.locator(`tr[data-testid="incident-row"][data-id="${incidentId}"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute("data-status"), "resolved");

  // The cluster: healthy, three members, the snapshot's data and nothing written after it.
  await op.page.goto(new URL(`/clusters/${CLUSTER}`, CONSOLE).href);
  await op.page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 120_000 });
  await op.page.waitForFunction(() => document.querySelectorAll('tr[data-testid^="member-"]').length === 3, null, { timeout: 60_000 });
  assert.equal(await op.page.locator('[data-testid="open-incident-banner"]').count(), 0, "no open incident any more");
  await shot(op.page, "cluster-healthy");
  assert.match(etcdctl(first, "get", "/registry/configmaps/default/before-snapshot"), /kept/);
  assert.equal(etcdctl(first, "get", "/registry/configmaps/default/after-snapshot").trim(), "", "keys written after the snapshot are gone");

  assert.deepEqual(op.problems.filter((p) => !/favicon/.test(p)), [], "no console errors for the operator");
  assert.deepEqual(ap.problems.filter((p) => !/favicon/.test(p)), [], "no console errors for the approver");
});

test("a single control-plane node without a fresh snapshot shows the seed document's warning", async (t) => {
  const { context, page, problems } = await openPage(browser);
  t.after(() => context.close());
  await signIn(page, SINGLE, OPERATOR, SINGLE_PASSWORD);
  problems.length = 0;
  await page.goto(new URL(`/clusters/${CLUSTER}`, SINGLE).href);
  const warning = page.locator('[data-testid="single-cp-warning"]');
  await warning.waitFor({ timeout: 60_000 });
  const text = await warning.textContent();
  assert.match(text, /single control-plane node/);
  assert.match(text, /loss of the control plane node might render the whole cluster irrecoverable without a backup/i);
  assert.match(text, /no verified snapshot/);
  assert.equal(await page.locator('[data-testid="single-cp-take-snapshot"]').getAttribute("href"), `/clusters/${CLUSTER}/snapshots`);
  await screenshotBothThemes(page, "recovery-single-cp-warning");

  // A verified snapshot now: the warning goes.
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 60_000 });
  const taken = await apiPost(page, `/api/clusters/${CLUSTER}/snapshots`, {}, SINGLE);
  assert.equal(taken.snapshot.failure ?? null, null, "the snapshot was stored");
  const scheduleRead = page.waitForResponse((r) => r.url().endsWith(`/api/clusters/${CLUSTER}/schedule`) && r.ok());
  await page.reload();
  await scheduleRead;
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout: 30_000 });
  await page.waitForTimeout(1_000);
  assert.equal(await warning.count(), 0, "no warning once a fresh snapshot exists");
  assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), []);
});
