// The admin-only machine-config panel on the snapshots page against the real console and the
// emulated cluster: an admin backs up every control-plane node's machine config, sees the
// backups and downloads one (the node's v1alpha1 YAML, decrypted); an operator is shown no panel
// and the console refuses the API to them.
// Needs TALOS_DR_URL, TALOS_DR_USER / TALOS_DR_PASSWORD (every role, admin included) and
// TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD; the console must run with
// TALOS_DR_CONFIG_BACKUP_KEY_FILE (or --config-backup-key-file), or backups are refused.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

import { launchBrowser, openPage, screenshot, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CLUSTER = "emulated";
const OPERATOR = process.env.TALOS_DR_OPERATOR;
const OPERATOR_PASSWORD = process.env.TALOS_DR_OPERATOR_PASSWORD;

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD must name a viewer+operator user");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const snapshotsUrl = () => new URL(`/clusters/${CLUSTER}/snapshots`, CONSOLE).href;

test("an admin backs up the machine configs, sees them listed and downloads one", async () => {
  const { context, page, problems } = await openPage(browser);
  await signIn(page, CONSOLE);
  await page.goto(snapshotsUrl());
  const panel = page.locator('[data-testid="machine-configs"]');
  await panel.waitFor({ timeout: 15_000 });
  await panel.locator('[data-testid="no-machine-configs"], [data-testid="machine-config-row"]').first().waitFor({ timeout: 15_000 });
  const before = await panel.locator('[data-testid="machine-config-row"]').count();

  await panel.locator('[data-testid="back-up-machine-configs"]').click();
  const outcome = panel.locator('[data-testid="machine-config-result"], [data-testid="machine-config-error"]').first();
  await outcome.waitFor({ timeout: 30_000 });
  assert.equal(await outcome.getAttribute("data-testid"), "machine-config-result",
    `backed up (is TALOS_DR_CONFIG_BACKUP_KEY_FILE set for the console?): ${await outcome.textContent()}`);
  assert.equal(await outcome.textContent(), "Backed up 3 machine configs.");
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="machine-config-row"]').length >= n + 3,
    before,
    { timeout: 10_000 },
  );
  const first = panel.locator('[data-testid="machine-config-row"]').first();
  const node = await first.locator("td").nth(1).textContent();
  assert.match(node, /^127\.\d+\.\d+\.\d+$/);
  await screenshot(page, "machine-configs-admin");

  const saved = page.waitForEvent("download", { timeout: 30_000 });
  await first.locator('[data-testid="machine-config-download"]').click();
  const download = await saved;
  assert.match(download.suggestedFilename(), new RegExp(`^${CLUSTER}-${node.replaceAll(".", "\\.")}-.+\\.yaml$`));
  const yaml = await readFile(await download.path(), "utf8");
  assert.match(yaml, /^version: v1alpha1$/m);
  assert.match(yaml, new RegExp(`^\\s+- ${node.replaceAll(".", "\\.")}/24$`, "m"), "the node's own config");

  assert.deepEqual(problems.filter((p) => !/favicon/.test(p)), [], "no console errors on the page");
  await context.close();
});

test("an operator is shown no machine configs and the console refuses them", async () => {
  const { context, page } = await openPage(browser);
  await signIn(page, CONSOLE, OPERATOR, OPERATOR_PASSWORD);
  await page.goto(snapshotsUrl());
  await page.locator('[data-testid="snapshot-actions"]').waitFor({ timeout: 15_000 });
  await page.locator('[data-testid="snapshot-history"], [data-testid="no-snapshots"]').first().waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('[data-testid="machine-configs"]').count(), 0, "no machine-config panel");

  const list = await page.request.get(new URL(`/api/clusters/${CLUSTER}/machine-configs`, CONSOLE).href);
  assert.equal(list.status(), 403);
  const body = await list.json();
  assert.equal(body.error.code, "role_required");
  assert.match(body.error.message, /admin/);
  const csrf = await page.evaluate(async () => (await (await fetch("/api/session")).json()).session.csrf_token);
  const backup = await page.request.post(new URL(`/api/clusters/${CLUSTER}/machine-configs`, CONSOLE).href, {
    headers: { "x-csrf-token": csrf ?? "", origin: new URL(CONSOLE).origin },
    data: {},
  });
  assert.equal(backup.status(), 403);
  // Refused for the role, not for a missing token.
  assert.equal((await backup.json()).error.code, "role_required");
  await context.close();
});
