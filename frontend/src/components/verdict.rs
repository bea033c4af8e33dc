use leptos::prelude::*;
use talos_dr_shared::{ClusterHealth, HealthVerdict};

use crate::format::verdict_tone;

fn verdict_memo(health: RwSignal<Option<ClusterHealth>>) -> Memo<Option<HealthVerdict>> {
    Memo::new(move |_| health.with(|h| h.as_ref().map(|h| h.verdict.clone())))
}

/// The first thing an SRE reads: healthy / degraded / quorum restorable / full recovery needed /
/// unknown, the quorum arithmetic and the next move, in words; then every finding.
#[component]
pub fn VerdictBanner(health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let verdict = verdict_memo(health);
    let tone = move || verdict.with(|v| v.as_ref().map(|v| verdict_tone(v.level)));
    let level = move || verdict.with(|v| v.as_ref().map(|v| v.level.as_str()).unwrap_or("unknown"));
    let reasons = move || {
        verdict.with(|v| {
            // Findings are listed on their own just above; the rest are the members' reasons.
            let reasons: Vec<String> = v
                .as_ref()
                .map(|v| {
                    v.reasons
                        .iter()
                        .filter(|r| !v.findings.iter().any(|f| &f.words == *r))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let has_findings = v.as_ref().is_some_and(|v| !v.findings.is_empty());
            if reasons.is_empty() && has_findings {
                ().into_any()
            } else if reasons.is_empty() {
                view! { <p class="no-findings">"No findings: every member is healthy and agrees."</p> }.into_any()
            } else {
                view! {
                    <ul class="reasons" data-testid="verdict-reasons">
                        {reasons.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}
                    </ul>
                }
                .into_any()
            }
        })
    };
    let findings = move || {
        verdict.with(|v| {
            let findings = v.as_ref().map(|v| v.findings.clone()).unwrap_or_default();
            (!findings.is_empty()).then(|| {
                view! {
                    <ul class="findings" data-testid="findings" aria-label="Findings">
                        {findings.into_iter().map(|f| view! {
                            <li data-kind=f.kind.as_str()>
                                <span class="finding-kind">{f.kind.as_str()}</span>": "{f.words}
                            </li>
                        }).collect_view()}
                    </ul>
                }
            })
        })
    };
    let text = move |f: fn(&HealthVerdict) -> String| {
        move || verdict.with(|v| v.as_ref().map(f).unwrap_or_default())
    };
    view! {
        <section
            class=move || format!("verdict {}", tone().map_or("tone-unknown", |t| t.class()))
            data-testid="verdict"
            data-level=level
            aria-labelledby="verdict-word"
        >
            <div class="verdict-head">
                <h2 id="verdict-word" class="verdict-word" data-testid="verdict-level">
                    <span class="glyph" aria-hidden="true">{move || tone().map(|t| t.glyph())}</span>
                    {level}
                </h2>
                <p class="verdict-summary" data-testid="verdict-summary" aria-live="polite">
                    {move || verdict.with(|v| v.as_ref().map(|v| v.summary.clone()))}
                </p>
            </div>
            <p class="quorum-words" data-testid="quorum-words">{text(|v| v.quorum_words.clone())}</p>
            <p class="next-move">
                <span class="next-move-label">"Next move: "</span>
                <span data-testid="verdict-next-move">{text(|v| v.next_move.clone())}</span>
            </p>
            {findings}
            {reasons}
        </section>
    }
}

/// Voters, healthy voters, the majority needed, and how many failures the cluster tolerates.
#[component]
pub fn QuorumFacts(health: RwSignal<Option<ClusterHealth>>) -> impl IntoView {
    let verdict = verdict_memo(health);
    let fact = move |f: fn(&HealthVerdict) -> String| {
        move || verdict.with(|v| v.as_ref().map(f).unwrap_or_else(|| "–".into()))
    };
    view! {
        <section class="quorum" aria-label="Quorum" data-testid="quorum">
            <dl>
                <div>
                    <dt>"Voters"</dt>
                    <dd data-testid="quorum-voters">{fact(|v| v.quorum.voters.to_string())}</dd>
                </div>
                <div>
                    <dt>"Healthy"</dt>
                    <dd data-testid="quorum-healthy">{fact(|v| v.quorum.healthy.to_string())}</dd>
                </div>
                <div>
                    <dt>"Needed"</dt>
                    <dd data-testid="quorum-needed">{fact(|v| v.quorum.needed().to_string())}</dd>
                </div>
                <div>
                    <dt>"Tolerates"</dt>
                    <dd data-testid="quorum-tolerance">
                        {fact(|v| {
                            let n = v.quorum.fault_tolerance();
                            format!("{n} failure{}", if n == 1 { "" } else { "s" })
                        })}
                    </dd>
                </div>
                <div>
                    <dt>"Can lose now"</dt>
                    <dd data-testid="quorum-margin">{fact(|v| v.quorum.margin().to_string())}</dd>
                </div>
                <div>
                    <dt>"Leader"</dt>
                    <dd class="mono" data-testid="quorum-leader">
                        {fact(|v| v.leader.clone().unwrap_or_else(|| "none".into()))}
                    </dd>
                </div>
            </dl>
        </section>
    }
}
