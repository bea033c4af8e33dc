// The schedule form on the snapshots page against the real console: an admin sets a schedule, a
// cron expression that does not parse is refused with the console's own words next to the cron
// field, the saved schedule (with its rehearse option) is shown after a reload; a viewer and an operator see it read-only.
// Needs TALOS_DR_URL, TALOS_DR_USER / TALOS_DR_PASSWORD (every role, admin included),
// TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD and TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD;
// scripts/browser-tests.sh sets them all.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, openPage, screenshot, signIn } from "./browser.mjs";

const CONSOLE = process.env.TALOS_DR_URL;
const CLUSTER = "emulated";
const VIEWER = process.env.TALOS_DR_VIEWER;
const VIEWER_PASSWORD = process.env.TALOS_DR_VIEWER_PASSWORD;
const OPERATOR = process.env.TALOS_DR_OPERATOR;
const OPERATOR_PASSWORD = process.env.TALOS_DR_OPERATOR_PASSWORD;
// Once a year: the schedule never fires while the other browser tests count snapshot rows.
const CRON = "0 3 1 1 *";

let browser;

before(async () => {
  assert.ok(CONSOLE, "TALOS_DR_URL must name the running console (see scripts/browser-tests.sh)");
  assert.ok(VIEWER && VIEWER_PASSWORD, "TALOS_DR_VIEWER / TALOS_DR_VIEWER_PASSWORD must name a viewer-only user");
  assert.ok(OPERATOR && OPERATOR_PASSWORD, "TALOS_DR_OPERATOR / TALOS_DR_OPERATOR_PASSWORD must name a viewer+operator user");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

const snapshotsUrl = () => new URL(`/clusters/${CLUSTER}/snapshots`, CONSOLE).href;

async function fill(page, testId, value) {
  await page.locator(`[data-testid="${testId}"]`).fill(value);
}

test("an admin sets a schedule; a bad cron is refused at its field; the schedule survives a reload", async () => {
  const { page, problems } = await openPage(browser);
  await signIn(page, CONSOLE);
  await page.goto(snapshotsUrl());
  const form = page.locator('[data-testid="schedule-form"]');
  await form.waitFor({ timeout: 15_000 });

  // A cron expression that does not parse: the console's message, at the cron field.
  await fill(page, "schedule-cron-input", "every six hours");
  await fill(page, "schedule-keep-last", "5");
  await fill(page, "schedule-daily", "7");
  await fill(page, "schedule-freshness-hours", "6");
  await fill(page, "schedule-jitter", "30");
  await page.locator('[data-testid="schedule-rehearse"]').setChecked(true);
  await page.locator('[data-testid="schedule-save"]').click();
  const cronError = form.locator('[data-testid="schedule-error-cron"]');
  await cronError.waitFor({ timeout: 10_000 });
  assert.match(await cronError.textContent(), /^cron: "every six hours" does not parse/);
  assert.equal(await form.locator('label[aria-invalid="true"] [data-testid="schedule-cron-input"]').count(), 1,
    "the cron input is the one marked invalid");
  await screenshot(page, "schedule-bad-cron");

  // A retention that keeps nothing is refused at the retention fields.
  await fill(page, "schedule-cron-input", CRON);
  await fill(page, "schedule-keep-last", "");
  await fill(page, "schedule-daily", "0");
  await page.locator('[data-testid="schedule-save"]').click();
  const retentionError = form.locator('[data-testid="schedule-error-retention"]');
  await retentionError.waitFor({ timeout: 10_000 });
  assert.match(await retentionError.textContent(), /^retention: keeps nothing/);
  assert.equal(await form.locator('[data-testid="schedule-error-cron"]').count(), 0, "the cron error is gone");

  // A good one is saved and shown.
  await fill(page, "schedule-keep-last", "5");
  await fill(page, "schedule-daily", "7");
  await page.locator('[data-testid="schedule-save"]').click();
  await page.waitForFunction(
    (cron) => document.querySelector('[data-testid="schedule-cron"]')?.textContent === cron,
    CRON,
    { timeout: 10_000 },
  );
  assert.equal(await page.locator('[data-testid="schedule-retention"]').textContent(), "5 last, 7 daily");
  assert.equal(await page.locator('[data-testid="schedule-rehearse-fact"]').textContent(), "each scheduled snapshot");
  assert.equal(await form.locator('[role="alert"]').count(), 0, "no error left on the form");

  // After a reload: the facts and the form show what was saved.
  await page.reload();
  await page.locator('[data-testid="schedule-cron"]').waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('[data-testid="schedule-cron"]').textContent(), CRON);
  assert.equal(await page.locator('[data-testid="schedule-retention"]').textContent(), "5 last, 7 daily");
  assert.match(await page.locator('[data-testid="schedule-next"]').textContent(), /-01-01/);
  assert.equal(await page.locator('[data-testid="schedule-cron-input"]').inputValue(), CRON);
  assert.equal(await page.locator('[data-testid="schedule-keep-last"]').inputValue(), "5");
  assert.equal(await page.locator('[data-testid="schedule-freshness-hours"]').inputValue(), "6");
  assert.equal(await page.locator('[data-testid="schedule-jitter"]').inputValue(), "30");
  assert.equal(await page.locator('[data-testid="schedule-rehearse"]').isChecked(), true);
  await screenshot(page, "schedule-saved");
  assert.deepEqual(problems.filter((p) => !/favicon|status of 400/.test(p)), [], "no console errors on the page");
});

test("a viewer and an operator see the schedule read-only", async () => {
  for (const [user, password] of [[VIEWER, VIEWER_PASSWORD], [OPERATOR, OPERATOR_PASSWORD]]) {
    const { context, page } = await openPage(browser);
    await signIn(page, CONSOLE, user, password);
    await page.goto(snapshotsUrl());
    await page.locator('[data-testid="schedule-panel"]').waitFor();
    await page.locator('[data-testid="schedule-cron"], [data-testid="no-schedule"]').first().waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('[data-testid="schedule-form"]').count(), 0, `${user} is offered no form`);
    assert.equal(await page.locator('[data-testid="schedule-cron-input"]').count(), 0, `${user} has no cron input`);
    await context.close();
  }
});
