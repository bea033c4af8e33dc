// The staged recovery's variants in the UI, each on its own console and emulated cluster on
// real etcd (scripts/browser-tests.sh starts them): an operator and an approver in two headless
// Chromium sessions run the whole flow
//   - from a raw copy of the database taken from the incident page (127.0.81.x): the bootstrap
//     step says and sends skip-hash-check, and the data restored is the copy's;
//   - on a cluster whose first node is an `init` node (127.0.82.x): its config is staged with
//     machine.type controlplane and the node rebooted before the resets;
//   - on a single-node cluster (127.0.83.x).
// Each ends with the cluster healthy, the expected member count and the restored data, checked
// with etcdctl and the emulator's call counters. Screenshots: $SCREENSHOT_DIR/variant-*.png.
//
// Needs RAW_COPY_*, INIT_NODE_*, SINGLE_FLOW_* and RECOVERY_OPERATOR / RECOVERY_APPROVER (see
// recovery-flow.mjs); `etcdctl` reads and writes keys.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, screenshotBothThemes } from "./browser.mjs";
import {
  CLUSTER, apiPost, chooseSnapshot, clusterNodes, clusterPage, control, etcdctl, expectClusterHealthy,
  expectResolved, pageProblems, passPrechecks, recoveryStack, runPlan, shooter, signedIn, startIncident,
  stepCard, steps, waitHealthy, waitQuorumLost,
} from "./recovery-flow.mjs";

const KEPT = "/registry/configmaps/default/in-the-restored-copy";
const LOST = "/registry/configmaps/default/written-after-the-copy";

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/**
 * Operator and approver signed in on the stack's console, the operator on the cluster page
 * once it is healthy (or only degraded by an init node, when `initNode` names it).
 */
async function team(t, stack, initNode) {
  const op = await signedIn(browser, stack.url, stack.operator, stack.operatorPassword);
  const ap = await signedIn(browser, stack.url, stack.approver, stack.approverPassword);
  t.after(async () => {
    await op.context.close();
    await ap.context.close();
  });
  await clusterPage(op.page, stack.url);
  if (initNode) {
    const verdict = op.page.locator('[data-testid="verdict"][data-level="degraded"]');
    await verdict.waitFor({ timeout: 60_000 });
    assert.match(await verdict.textContent(), new RegExp(`${initNode.replaceAll(".", "\\.")} has machine type init`));
  } else {
    await waitHealthy(op.page);
  }
  return { op, ap };
}

async function takeSnapshot(stack, op) {
  const taken = await apiPost(op.page, stack.url, `/api/clusters/${CLUSTER}/snapshots`, {});
  assert.equal(taken.snapshot.failure ?? null, null, "the snapshot was stored");
  return taken.snapshot.id;
}

async function timelineKinds(page) {
  return page.$$eval('[data-testid="timeline-event"]', (els) => els.map((e) => e.dataset.kind));
}

/** Every node reset once; the bootstrap reached exactly one node, once. */
async function expectCallsOnce(stack) {
  const nodes = await clusterNodes(stack);
  for (const n of nodes) assert.equal(n.calls.reset, 1, `one reset on ${n.ip}`);
  assert.deepEqual(nodes.map((n) => n.calls.bootstrap).sort(), [...Array(nodes.length - 1).fill(0), 1], "one bootstrap in all");
  return nodes;
}

test("a raw copy taken from the incident page restores with skip-hash-check, shown and sent", async (t) => {
  const stack = recoveryStack("RAW_COPY");
  const shot = shooter("variant-raw");
  const { op, ap } = await team(t, stack);
  const nodes = await clusterNodes(stack);
  assert.equal(nodes.length, 3);
  const [first, second, third] = nodes.map((n) => n.ip);

  // An older verified snapshot, then a key only the raw copy will hold, then quorum lost.
  const older = await takeSnapshot(stack, op);
  etcdctl(first, "put", KEPT, "kept");
  // etcd commits its backend every 100 ms: the copy of the file must hold the key.
  await op.page.waitForTimeout(1_500);
  await control(stack, "POST", `/nodes/${second}/etcd/kill`);
  await control(stack, "POST", `/nodes/${third}/etcd/kill`);
  await waitQuorumLost(op.page);
  await shot(op.page, "cluster-broken");

  await startIncident(stack, op, ap, shot, "etcd down on two nodes; the last snapshot is old");
  await passPrechecks(op, shot, 3);

  // The raw copy, from the node whose etcd still holds the newest data.
  const rawButton = op.page.locator('[data-testid="take-raw-copy-highest"]');
  await rawButton.waitFor({ timeout: 30_000 });
  assert.match(await rawButton.textContent(), new RegExp(`^Raw copy from .+ \\(${first.replaceAll(".", "\\.")}\\), raft index \\d+$`));
  await rawButton.click();
  const outcome = op.page.locator('[data-testid="take-result"], [data-testid="take-error"]').first();
  await outcome.waitFor({ timeout: 60_000 });
  assert.equal(await outcome.getAttribute("data-testid"), "take-result", await outcome.textContent());
  assert.match(await outcome.textContent(), new RegExp(`^Raw copy stored from ${first.replaceAll(".", "\\.")}\\.$`));
  const rawRow = op.page.locator('tr[data-testid="candidate"]', { hasText: "raw copy" });
  await rawRow.waitFor({ timeout: 15_000 });
  const rawId = await rawRow.getAttribute("data-id");
  assert.notEqual(rawId, older);
  assert.equal(await rawRow.getAttribute("data-offered"), "true", "a raw copy can be restored");
  assert.match(await rawRow.textContent(), /restores only with skip-hash-check/);
  assert.equal(await op.page.locator(`tr[data-testid="candidate"][data-id="${older}"]`).count(), 1, "the older snapshot is still offered");

  const plan = await chooseSnapshot(op, shot, rawId);
  assert.match(await op.page.locator('[data-testid="chosen-skip-hash"]').textContent(), /skipped: a raw copy has no hash trailer \(--recover-skip-hash-check\)/);
  const boot = plan.find((s) => s.kind === "bootstrap");
  assert.ok(boot, `a bootstrap step: ${plan.map((s) => s.kind).join(", ")}`);
  for (const page of [op.page, ap.page]) {
    const card = stepCard(page, boot.id);
    await card.waitFor({ timeout: 15_000 });
    assert.match(await card.locator('[data-testid="step-params"]').textContent(), /Hash checkskipped \(--recover-skip-hash-check\)/);
    assert.match(await card.locator('[data-testid="step-talosctl"]').textContent(), /bootstrap --recover-from=\S+ --recover-skip-hash-check/);
  }
  await shot(op.page, "plan");

  const labels = await runPlan(op, ap, shot);
  assert.ok(labels.some((l) => /^Bootstrap etcd on .+ from snapshot [0-9a-f]{12}, skip hash check$/.test(l)), `bootstrap button: ${labels.join(" | ")}`);
  await expectResolved(op);
  const started = op.page.locator('[data-testid="timeline-event"][data-kind="step_started"]', { hasText: "runs Bootstrap" });
  assert.match(await started.textContent(), /--recover-skip-hash-check/, "the run's timeline line names the flag sent");
  const kernel = await op.page.$$eval('[data-testid="timeline-event"][data-kind="kernel_log"]', (els) => els.map((e) => e.textContent));
  assert.ok(kernel.some((l) => l.includes("recovering etcd from snapshot")), `the restore's kernel log is in the timeline: ${kernel.length} lines`);
  await shot(op.page, "incident-resolved");

  await expectClusterHealthy(op.page, stack.url, 3);
  await shot(op.page, "cluster-healthy");
  assert.equal(etcdctl(first, "get", KEPT, "--print-value-only").trim(), "kept", "the raw copy's key is back");
  await expectCallsOnce(stack);
  assert.deepEqual(pageProblems(op), [], "no console errors for the operator");
  assert.deepEqual(pageProblems(ap), [], "no console errors for the approver");
});

test("an init node is converted first: its config staged with machine.type controlplane, then a reboot", async (t) => {
  const stack = recoveryStack("INIT_NODE");
  const shot = shooter("variant-init");
  const nodes = await clusterNodes(stack);
  const { op, ap } = await team(t, stack, nodes[0].ip);
  await shot(op.page, "cluster-with-init-node");
  assert.equal(nodes.length, 3);
  assert.deepEqual(nodes.map((n) => n.machine_type), ["init", "controlplane", "controlplane"]);
  const [first, second, third] = nodes.map((n) => n.ip);

  etcdctl(first, "put", KEPT, "kept");
  const snapshotId = await takeSnapshot(stack, op);
  etcdctl(first, "put", LOST, "lost");
  await control(stack, "POST", `/nodes/${second}/etcd/kill`);
  await control(stack, "POST", `/nodes/${third}/etcd/kill`);
  await waitQuorumLost(op.page);

  await startIncident(stack, op, ap, shot, "etcd down on two nodes; cp-1 is still an init node");
  await passPrechecks(op, shot, 3);
  const precheckRow = op.page.locator(`[data-testid="precheck-node"][data-node="${first}"]`);
  assert.match(await precheckRow.textContent(), /init/, "the pre-checks show the machine type");
  const plan = await chooseSnapshot(op, shot, snapshotId);
  const kinds = plan.map((s) => `${s.kind}@${s.host ?? ""}`);
  const stage = plan.findIndex((s) => s.kind === "stage_controlplane_config");
  const reboot = plan.findIndex((s) => s.kind === "reboot_node");
  const firstReset = plan.findIndex((s) => s.kind === "reset_node");
  assert.ok(stage >= 0 && reboot === stage + 1 && firstReset > reboot, `stage, reboot, then the resets: ${kinds.join(", ")}`);
  assert.equal(plan.filter((s) => s.kind === "stage_controlplane_config").length, 1, "only the init node is converted");
  const stageCard = stepCard(op.page, plan[stage].id);
  assert.match(await stageCard.locator('[data-testid="step-talosctl"]').textContent(), /edit mc --mode=staged/);
  assert.match(await stageCard.locator('[data-testid="step-target"]').textContent(), /Typeinit/);
  await shot(op.page, "plan");
  await screenshotBothThemes(op.page, "variant-init-plan-themes");

  // Staged means not active before the reboot: the emulator still runs it as an init node.
  const typeBeforeReboot = [];
  const refused = [];
  const labels = await runPlan(op, ap, shot, {
    maxRefusals: 3,
    refused,
    beforeRun: async (s) => {
      if (s.kind === "reboot_node") {
        const node = (await clusterNodes(stack)).find((n) => n.ip === first);
        typeBeforeReboot.push(node.machine_type);
        assert.equal(node.calls.apply_configuration, 1, "the config was applied once, before the reboot");
      }
    },
  });
  assert.deepEqual(typeBeforeReboot, ["init"], "the staged config waits for the reboot");
  // Right after the reboot the console may still see cp-1 as it was (init, etcd stopping): an
  // approval given then is void once the node settles, and the step says so.
  for (const why of refused) assert.match(why, /^reset_node on cp-1: Not run: the node changed since the approval/);
  assert.ok(labels.includes(`Stage machine.type: controlplane on cp-1 (${first})`), `labels: ${labels.join(" | ")}`);
  assert.ok(labels.includes(`Reboot cp-1 (${first})`), `labels: ${labels.join(" | ")}`);
  await expectResolved(op);
  await shot(op.page, "incident-resolved");

  // Healthy, not just quorate: the init finding is gone with the conversion.
  await expectClusterHealthy(op.page, stack.url, 3);
  assert.doesNotMatch(await op.page.locator('[data-testid="verdict"]').textContent(), /machine type init/);
  await shot(op.page, "cluster-healthy");
  const after = await expectCallsOnce(stack);
  const converted = after.find((n) => n.ip === first);
  assert.equal(converted.machine_type, "controlplane", "cp-1 is a control-plane node now");
  assert.equal(converted.calls.apply_configuration, 1);
  assert.equal(converted.calls.reboot, 1);
  for (const n of after.filter((n) => n.ip !== first)) {
    assert.equal(n.calls.apply_configuration + n.calls.reboot, 0, `nothing staged on ${n.ip}`);
  }
  assert.equal(etcdctl(first, "get", KEPT, "--print-value-only").trim(), "kept");
  assert.equal(etcdctl(first, "get", LOST, "--print-value-only").trim(), "", "the key written after the snapshot is gone");
  assert.deepEqual(pageProblems(op), []);
  assert.deepEqual(pageProblems(ap), []);
});

test("a single-node cluster goes through the same flow and ends with its one member healthy", async (t) => {
  const stack = recoveryStack("SINGLE_FLOW");
  const shot = shooter("variant-single");
  const { op, ap } = await team(t, stack);
  const nodes = await clusterNodes(stack);
  assert.equal(nodes.length, 1);
  const only = nodes[0].ip;

  etcdctl(only, "put", KEPT, "kept");
  const snapshotId = await takeSnapshot(stack, op);
  etcdctl(only, "put", LOST, "lost");
  await control(stack, "POST", `/nodes/${only}/etcd/kill`);
  await op.page.locator('[data-testid="verdict"]:not([data-level="healthy"])').waitFor({ timeout: 60_000 });
  await shot(op.page, "cluster-broken");

  await startIncident(stack, op, ap, shot, "etcd on the only control-plane node is down");
  await passPrechecks(op, shot, 1);
  const plan = await chooseSnapshot(op, shot, snapshotId);
  const kinds = plan.map((s) => s.kind);
  assert.deepEqual(kinds.filter((k) => k === "reset_node" || k === "bootstrap"), ["reset_node", "bootstrap"], kinds.join(", "));
  assert.ok(plan.filter((s) => s.host).every((s) => s.host === "cp-1"), "every step targets the only node");
  await shot(op.page, "plan");

  const labels = await runPlan(op, ap, shot);
  assert.equal(labels.length, 2, `a reset and a bootstrap were run: ${labels.join(" | ")}`);
  await expectResolved(op);
  const kinds2 = await timelineKinds(op.page);
  for (const kind of ["request", "approval", "step_started", "step_finished", "incident_closed"]) {
    assert.ok(kinds2.includes(kind), `the timeline has ${kind}`);
  }
  await shot(op.page, "incident-resolved");

  await expectClusterHealthy(op.page, stack.url, 1);
  assert.equal(await op.page.locator('[data-testid="single-cp-warning"]').count(), 0, "a fresh snapshot exists: no warning");
  await shot(op.page, "cluster-healthy");
  await expectCallsOnce(stack);
  assert.equal(etcdctl(only, "get", KEPT, "--print-value-only").trim(), "kept");
  assert.equal(etcdctl(only, "get", LOST, "--print-value-only").trim(), "", "the key written after the snapshot is gone");
  assert.deepEqual(pageProblems(op), []);
  assert.deepEqual(pageProblems(ap), []);
});
