// What the staged-recovery browser tests share: the emulator's control interface, etcdctl,
// API calls from a signed-in page, reading the plan off the incident page, and the loop in which
// an operator requests, an approver approves and the operator runs every destructive step.
//
// A recovery stack is a console with its own emulated cluster; scripts/browser-tests.sh exports
// <PREFIX>_URL, <PREFIX>_CONTROL, <PREFIX>_STATE and the passwords <PREFIX>_OPERATOR_PASSWORD /
// <PREFIX>_APPROVER_PASSWORD of the users RECOVERY_OPERATOR / RECOVERY_APPROVER on it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";

import { SCREENSHOT_DIR, openPage, screenshot, signIn } from "./browser.mjs";

export const CLUSTER = "emulated";
export const DESTRUCTIVE = new Set(["reset_node", "bootstrap", "stage_controlplane_config", "reboot_node"]);

/** The stack scripts/browser-tests.sh started under PREFIX; fails naming what is missing. */
export function recoveryStack(prefix) {
  const env = (name) => process.env[`${prefix}_${name}`];
  const stack = {
    prefix,
    url: env("URL"),
    control: env("CONTROL"),
    state: env("STATE"),
    operator: process.env.RECOVERY_OPERATOR,
    operatorPassword: env("OPERATOR_PASSWORD"),
    approver: process.env.RECOVERY_APPROVER,
    approverPassword: env("APPROVER_PASSWORD"),
  };
  for (const [key, value] of Object.entries(stack)) {
    assert.ok(value, `${prefix}: ${key} is not set; run the test through scripts/browser-tests.sh`);
  }
  return stack;
}

/** A call on the emulator's control interface (loopback HTTP). */
export async function control(stack, method, path, body) {
  const res = await fetch(new URL(path, stack.control), {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path} on the emulator answered ${res.status}: ${text}`);
  return text;
}

export async function clusterNodes(stack) {
  return JSON.parse(await control(stack, "GET", "/cluster")).nodes;
}

export function etcdctl(node, ...args) {
  return execFileSync("etcdctl", ["--endpoints", `http://${node}:2379`, "--command-timeout=5s", ...args], {
    env: { ...process.env, ETCDCTL_API: "3" },
  }).toString();
}

/** A state-changing API call from a signed-in page, as the UI makes it (CSRF header, Origin). */
export async function apiPost(page, base, path, body) {
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

/** Numbered screenshots `<prefix>-NN-<name>.png`, in the order taken; an earlier run's go first. */
export function shooter(prefix) {
  let n = 0;
  return async (page, name) => {
    if (n === 0) {
      const earlier = (await readdir(SCREENSHOT_DIR).catch(() => [])).filter((f) => f.startsWith(`${prefix}-`));
      await Promise.all(earlier.map((f) => rm(join(SCREENSHOT_DIR, f), { force: true })));
    }
    n += 1;
    return screenshot(page, `${prefix}-${String(n).padStart(2, "0")}-${name}`);
  };
}

/** Opens a page for USER and signs it in; errors from the sign-in page are not counted. */
export async function signedIn(browser, base, user, password) {
  const session = await openPage(browser);
  await signIn(session.page, base, user, password);
  session.problems.length = 0;
  return session;
}

export function pageProblems(session) {
  return session.problems.filter((p) => !/favicon/.test(p));
}

export const stepCard = (page, id) => page.locator(`[data-testid="step"][data-step-id="${id}"]`);

export async function steps(page) {
  return page.$$eval('[data-testid="step"]', (els) =>
    els.map((e) => ({ id: e.dataset.stepId, kind: e.dataset.kind, state: e.dataset.state, host: e.dataset.host })),
  );
}

export async function waitStepState(page, id, accept, timeout = 60_000) {
  await page.waitForFunction(
    ([id, accept]) => accept.includes(document.querySelector(`[data-testid="step"][data-step-id="${id}"]`)?.dataset.state),
    [id, accept],
    { timeout },
  );
}

export async function clusterPage(page, base) {
  await page.goto(new URL(`/clusters/${CLUSTER}`, base).href);
}

export async function waitHealthy(page, timeout = 60_000) {
  await page.locator('[data-testid="verdict"][data-level="healthy"]').waitFor({ timeout });
}

export async function waitQuorumLost(page) {
  await page.waitForFunction(
    () => ["quorum restorable", "full recovery needed", "quorum_restorable", "full_recovery_needed"].includes(document.querySelector('[data-testid="verdict"]')?.dataset.level),
    null,
    { timeout: 60_000 },
  );
}

/**
 * The operator starts the recovery from the cluster page with a reason; the approver follows
 * the banner to it. Returns the incident id.
 */
export async function startIncident(stack, op, ap, shot, reason) {
  await op.page.locator('[data-testid="start-recovery-button"]').click();
  await op.page.locator('[data-testid="start-recovery-reason"]').fill(reason);
  await op.page.locator('[data-testid="start-recovery-submit"]').click();
  await op.page.locator('[data-testid="incident-page"]').waitFor({ timeout: 15_000 });
  const id = await op.page.locator('[data-testid="incident-page"]').getAttribute("data-incident");
  assert.ok(id, "the incident page names its incident");
  await clusterPage(ap.page, stack.url);
  await ap.page.locator('[data-testid="open-incident-link"]').click();
  await ap.page.locator('[data-testid="incident-head"]').waitFor({ timeout: 15_000 });
  return id;
}

/** Waits for the pre-checks; overrides them with a reason when the console asks for it. */
export async function passPrechecks(op, shot, nodeCount) {
  await op.page.locator('[data-testid="precheck-verdict"]').waitFor({ timeout: 60_000 });
  assert.equal(await op.page.locator('[data-testid="precheck-node"]').count(), nodeCount, "every node checked");
  await shot(op.page, "prechecks");
  if (await op.page.locator('[data-testid="override-form"]').count()) {
    await op.page.locator('[data-testid="override-reason"]').fill("etcd is gone on the nodes that matter; restoring");
    await op.page.locator('[data-testid="override-submit"]').click();
    await op.page.locator('[data-testid="precheck-overridden"]').waitFor({ timeout: 15_000 });
  }
}

/** Chooses snapshot `id` (clicking its row when it is not preselected) and waits for the plan. */
export async function chooseSnapshot(op, shot, id) {
  const row = op.page.locator(`tr[data-testid="candidate"][data-id="${id}"]`);
  await row.waitFor({ timeout: 30_000 });
  const choice = row.locator('[data-testid="candidate-choice"]');
  if (!(await choice.isChecked())) await choice.check();
  await shot(op.page, "snapshot-chooser");
  await op.page.locator('[data-testid="choose-snapshot"]').click();
  await op.page.locator('[data-testid="chosen-snapshot"]').waitFor({ timeout: 30_000 });
  await op.page.locator('[data-testid="step"]').first().waitFor({ timeout: 30_000 });
  return steps(op.page);
}

/**
 * Every destructive step requested by the operator, approved by the approver and run by the
 * operator with the hostname typed; the console runs the rest. `beforeRun(step)` is awaited
 * before each run. A run the console refuses (the step back to planned) fails the test unless
 * `maxRefusals` allows it; the refusals are pushed onto `refused`. Returns the run buttons' labels once every step is done or the incident
 * closed; fails on a failed or uncertain step.
 */
export async function runPlan(op, ap, shot, { timeoutMs = 10 * 60_000, beforeRun = async () => {}, maxRefusals = 0, refused = [] } = {}) {
  const deadline = Date.now() + timeoutMs;
  const labels = [];
  const shotRunning = new Set();
  while (Date.now() < deadline) {
    const status = await op.page.locator('[data-testid="incident-head"]').getAttribute("data-status");
    if (status !== "open") return labels;
    const now = await steps(op.page);
    if (now.length > 0 && now.every((s) => s.state === "done")) {
      await op.page.waitForFunction(
        () => document.querySelector('[data-testid="incident-head"]')?.dataset.status !== "open",
        null,
        { timeout: 30_000 },
      ).catch(() => {});
      return labels;
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
        await card.locator('[data-testid="step-request-reason"]').fill(`${s.kind} on ${s.host}: part of the restore`);
        await card.locator('[data-testid="step-request"]').click();
        await waitStepState(op.page, s.id, ["requested"]);
        acted = true;
      } else if (s.state === "requested") {
        const apCard = stepCard(ap.page, s.id);
        await apCard.locator('[data-testid="step-approve"]').waitFor({ timeout: 15_000 });
        await apCard.locator('[data-testid="step-approve"]').click();
        await waitStepState(ap.page, s.id, ["approved", "claimed", "sent", "done"]);
        await shot(ap.page, `approved-${s.kind}-${s.host}`);
        acted = true;
      } else if (s.state === "approved" && (await card.locator('[data-testid="step-run"]').count())) {
        await beforeRun(s);
        const run = card.locator('[data-testid="step-run"]');
        const label = (await run.textContent()).trim();
        labels.push(label);
        assert.ok(label.includes(s.host), `the button names the node: ${label}`);
        await card.locator('[data-testid="step-run-confirm"]').fill(s.host);
        await shot(op.page, `confirm-${s.kind}-${s.host}`);
        await run.click();
        await waitStepState(op.page, s.id, ["claimed", "sent", "done", "failed", "uncertain", "planned"]);
        if ((await steps(op.page)).find((x) => x.id === s.id)?.state === "planned") {
          // The console refused the run and sent the step back: the approval no longer stands
          // (the node changed since). The step says why; the loop asks again, a bounded number
          // of times.
          const why = await card.locator('[data-testid="step-detail"]').textContent({ timeout: 5_000 }).catch(() => "");
          assert.match(why, /^Not run: /, "the step says why it was not run");
          const stale = card.locator('[data-testid="step-approval"][data-past-round="true"]');
          assert.match(await stale.first().textContent(), /no longer stands/, "the old approval is not shown as standing");
          refused.push(`${s.kind} on ${s.host}: ${why}`);
          await shot(op.page, `run-refused-${s.kind}-${s.host}`);
          assert.ok(refused.length <= maxRefusals, `runs refused: ${refused.join(" | ")}`);
        }
        acted = true;
      }
    }
    if (!acted) {
      const running = now.find((s) => ["claimed", "sent"].includes(s.state));
      if (running && !shotRunning.has(running.id)) {
        shotRunning.add(running.id);
        await shot(op.page, `running-${running.kind}`);
      }
      await op.page.waitForTimeout(1_000);
    }
  }
  assert.fail(`the recovery did not finish within ${timeoutMs / 1000} s: ${JSON.stringify(await steps(op.page))}`);
}

/** The incident resolved (by the post-checks, or closed with a summary once every step is done). */
export async function expectResolved(op) {
  if ((await op.page.locator('[data-testid="incident-head"]').getAttribute("data-status")) === "open") {
    await op.page.locator('[data-testid="close-summary"]').fill("restored from the snapshot");
    await op.page.locator('[data-testid="close-submit"]').click();
  }
  await op.page.waitForFunction(
    () => document.querySelector('[data-testid="incident-head"]')?.dataset.status === "resolved",
    null,
    { timeout: 30_000 },
  );
}

/** The cluster page healthy with `members` member rows and no open incident. */
export async function expectClusterHealthy(page, base, members) {
  await clusterPage(page, base);
  await waitHealthy(page, 120_000);
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-testid^="member-"]').length === n, members, { timeout: 60_000 });
  assert.equal(await page.locator('[data-testid="open-incident-banner"]').count(), 0, "no open incident any more");
}
