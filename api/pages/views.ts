import { text_of_minor } from '../../billing/amounts.js';
import type { CaseView } from '../../billing/disputes/index.js';
import {
  type EvseOffer,
  type PaySession,
  price_parts,
  type Receipt,
  tariff_alt_text,
  worked_example,
} from '../../billing/pay-at-charger/index.js';
import { esc } from './html.js';
import { decimal, type Lang, money, type Words } from './i18n.js';

/** The bodies of the pay pages: pure functions of what the routes read. */

export type EvseState = 'free' | 'occupied' | 'offline';

export function duration_text(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function state_badge(state: EvseState, w: Words): string {
  const label = state === 'free' ? w.state_free : state === 'occupied' ? w.state_occupied : w.state_offline;
  return `<span class="state state-${state}" id="evse-state">${esc(label)}</span>`;
}

export function evse_heading(charge_point_id: string, evse_id: number, state: EvseState, w: Words): string {
  return `<dl>
<dt>${esc(w.charger)}</dt><dd>${esc(charge_point_id)}</dd>
<dt>${esc(w.evse)}</dt><dd>${esc(evse_id)}</dd>
<dt>${esc(w.state)}</dt><dd>${state_badge(state, w)}</dd>
</dl>`;
}

export function tariff_words(offer: EvseOffer, lang: Lang, w: Words, now_ms: number): string {
  const t = offer.tariff.tariff;
  const alt = tariff_alt_text(t, lang);
  const parts = price_parts(t).map((p) => {
    const per =
      p.type === 'ENERGY'
        ? w.per_kwh
        : p.type === 'TIME'
          ? w.per_hour
          : p.type === 'PARKING_TIME'
            ? w.per_hour_parking
            : w.per_session;
    return `<li>${esc(money(p.incl_vat, t.currency, lang))} ${esc(per)} ${esc(w.incl_vat)}${p.restricted ? ` ${esc(w.at_some_times)}` : ''}</li>`;
  });
  const example = worked_example(t, offer.time_zone, now_ms);
  return `<h2>${esc(w.tariff)}</h2>
${alt === undefined ? '' : `<p id="tariff-alt-text">${esc(alt)}</p>`}
<ul id="tariff-parts">${parts.join('')}</ul>
<p id="worked-example">${esc(w.example('30', '45', money(example.incl_vat, t.currency, lang)))}</p>`;
}

export function hold_words(offer: EvseOffer, lang: Lang, w: Words, duration_max_min: number): string {
  const amount = money(text_of_minor(offer.hold.hold_minor, offer.hold.currency), offer.hold.currency, lang);
  const source =
    offer.hold.source === 'site'
      ? w.hold_source_site
      : offer.hold.source === 'max_price'
        ? w.hold_source_max_price
        : w.hold_source_estimate(decimal(String(offer.power_w / 1000), lang), String(duration_max_min));
  return `<section class="box" aria-labelledby="hold-title">
<h2 id="hold-title">${esc(w.hold_title)}: <span id="hold-amount">${esc(amount)}</span></h2>
<p>${esc(w.hold_text(amount))}</p>
<p class="small">${esc(source)}</p>
</section>`;
}

export function evse_body(input: {
  offer: EvseOffer;
  state: EvseState;
  lang: Lang;
  w: Words;
  now_ms: number;
  duration_max_min: number;
  create_url: string;
  /** This browser's own running session on the EVSE, if any. */
  own_session_url: string | undefined;
}): string {
  const { offer, state, lang, w } = input;
  let action: string;
  if (input.own_session_url !== undefined) {
    action = `<a class="button" href="${esc(input.own_session_url)}">${esc(w.title_session)}</a>`;
  } else if (state === 'offline') {
    action = `<p class="box alert" role="status">${esc(w.offline)}</p>`;
  } else if (state === 'occupied') {
    action = `<p class="box" role="status">${esc(w.not_free)}</p>`;
  } else {
    action = `<form method="post" action="${esc(input.create_url)}"><button type="submit" id="start-payment">${esc(w.pay_start)}</button></form>`;
  }
  return `<h1>${esc(w.title_evse)}</h1>
${evse_heading(offer.charge_point_id, offer.evse_id, state, w)}
${tariff_words(offer, lang, w, input.now_ms)}
${hold_words(offer, lang, w, input.duration_max_min)}
${action}`;
}

export function pay_body(input: {
  session: PaySession;
  lang: Lang;
  w: Words;
  client_secret: string;
  publishable_key: string;
  confirm_url: string;
  declined_message: string | undefined;
}): string {
  const { session, lang, w } = input;
  const amount = money(text_of_minor(session.hold_minor, session.currency), session.currency, lang);
  const declined =
    input.declined_message === undefined
      ? ''
      : `<div class="box alert" role="alert" id="declined"><h2>${esc(w.declined)}</h2><p>${esc(w.declined_text)}</p></div>`;
  return `<h1>${esc(w.title_pay)}</h1>
${declined}
<div id="pay" data-mode="pay" data-key="${esc(input.publishable_key)}" data-secret="${esc(input.client_secret)}" data-provider-missing="${esc(w.needs_js)}">
<p>${esc(w.hold_text(amount))}</p>
<form id="pay-form" method="post" action="${esc(input.confirm_url)}">
<label for="card-element" id="card-label">${esc(w.card)}</label>
<div id="card-element" role="group" aria-labelledby="card-label"></div>
<p id="card-errors" role="alert" class="small"></p>
<noscript><p class="box alert">${esc(w.needs_js)}</p></noscript>
<button type="submit" id="pay-button" disabled>${esc(w.pay_button(amount))}</button>
</form>
<p class="small">${esc(w.card_note)}</p>
</div>`;
}

/** The live figures, shared by the page and its SSE events. */
export function live_figures(session: PaySession, lang: Lang, w: Words, now_ms: number) {
  const started = session.started_at_ms;
  return {
    status: session.status,
    state_text:
      session.status === 'charging' ? w.charging : session.status === 'stopping' ? w.stopping : w.starting,
    energy: `${decimal((session.energy_wh / 1000).toFixed(3), lang)} kWh`,
    cost: money(text_of_minor(session.running_incl_vat_minor, session.currency), session.currency, lang),
    duration: duration_text(started === null ? 0 : now_ms - started),
  };
}

export function live_body(input: {
  session: PaySession;
  lang: Lang;
  w: Words;
  now_ms: number;
  events_url: string;
  stop_url: string;
}): string {
  const { session, lang, w } = input;
  const f = live_figures(session, lang, w, input.now_ms);
  const hold = money(text_of_minor(session.hold_minor, session.currency), session.currency, lang);
  const can_stop = session.status === 'charging' || session.status === 'starting';
  return `<h1>${esc(w.title_session)}</h1>
<div id="pay" data-mode="live" data-status="${esc(session.status)}" data-events="${esc(input.events_url)}">
<p role="status" aria-live="polite" id="state_text">${esc(f.state_text)}</p>
<dl class="box">
<dt>${esc(w.energy)}</dt><dd id="energy">${esc(f.energy)}</dd>
<dt>${esc(w.duration)}</dt><dd id="duration">${esc(f.duration)}</dd>
<dt>${esc(w.running_cost)}</dt><dd id="cost">${esc(f.cost)}</dd>
<dt>${esc(w.reserved)}</dt><dd id="hold">${esc(hold)}</dd>
</dl>
${can_stop ? `<form method="post" action="${esc(input.stop_url)}"><button type="submit" class="stop" id="stop">${esc(w.stop)}</button></form>` : ''}
<p class="small">${esc(w.live_note)}</p>
</div>`;
}

export function ended_body(input: { session: PaySession; lang: Lang; w: Words; evse_url: string }): string {
  const { session, lang, w } = input;
  const amount = money(text_of_minor(session.hold_minor, session.currency), session.currency, lang);
  if (session.status === 'declined') {
    return `<h1>${esc(w.declined)}</h1>
<div class="box alert" role="alert" id="outcome" data-status="declined" data-reason="${esc(session.reason ?? '')}"><p>${esc(
      // A failed 3-D Secure challenge: the bank, not the card, said no.
      session.reason === 'payment_intent_authentication_failure' ? w.authentication_failed : w.declined_text,
    )}</p></div>
<a class="button" href="${esc(input.evse_url)}">${esc(w.try_again)}</a>`;
  }
  if (session.status === 'released') {
    const why = w.released[session.reason ?? ''] ?? '';
    return `<h1>${esc(w.released_title)}</h1>
<div class="box ok" role="status" id="outcome" data-status="released" data-reason="${esc(session.reason ?? '')}">
<p>${esc(why)}</p><p>${esc(w.released_text(amount))}</p></div>
<a class="button" href="${esc(input.evse_url)}">${esc(w.back)}</a>`;
  }
  return `<h1>${esc(w.failed)}</h1><a class="button" href="${esc(input.evse_url)}">${esc(w.back)}</a>`;
}

export function other_browser_body(input: {
  charge_point_id: string;
  evse_id: number;
  state: EvseState;
  w: Words;
  evse_url: string;
}): string {
  const { w } = input;
  return `<h1>${esc(w.other_browser)}</h1>
<p class="box" role="status" id="other-browser">${esc(w.other_browser_text)}</p>
${evse_heading(input.charge_point_id, input.evse_id, input.state, w)}
<a class="button" href="${esc(input.evse_url)}">${esc(w.back)}</a>`;
}

export function receipt_body(input: {
  receipt: Receipt;
  session: PaySession;
  lang: Lang;
  w: Words;
  pdf_url: string;
  meter_url: string;
  dispute_url: string;
  /** The dispute case opened for this payment, with its bundle downloads. */
  dispute?: { case: CaseView; bundle_pdf_url: string; bundle_json_url: string } | undefined;
}): string {
  const { receipt: r, lang, w } = input;
  const m = (text: string) => esc(money(text, r.currency, lang));
  const lines = r.lines
    .map(
      (l) =>
        `<tr><td>${esc(w.receipt_lines[l.kind])}${l.volume === '' ? '' : ` (${esc(decimal(l.volume, lang))}${l.kind === 'energy' ? ' kWh' : ' h'})`}</td><td class="n">${m(l.excl_vat)}</td></tr>`,
    )
    .join('');
  const reasons = Object.entries(w.dispute_reasons)
    .map(([value, label]) => `<option value="${esc(value)}">${esc(label)}</option>`)
    .join('');
  const period = `${new Date(r.started_at_ms).toISOString().slice(0, 16).replace('T', ' ')} – ${new Date(r.stopped_at_ms).toISOString().slice(11, 16)} UTC`;
  return `<h1>${esc(w.title_receipt)} <span class="small">${esc(r.id)}</span></h1>
<dl>
<dt>${esc(w.charger)}</dt><dd>${esc(r.charge_point_id)} / ${esc(r.evse_id)}</dd>
<dt>${esc(w.period)}</dt><dd>${esc(period)}</dd>
<dt>${esc(w.energy)}</dt><dd id="receipt-energy">${esc(decimal(r.energy_kwh, lang))} kWh</dd>
</dl>
<table class="box" id="receipt-lines">
<caption class="small">${esc(w.tariff_version)} ${esc(r.tariff_id)} v${esc(r.tariff_version)}</caption>
<tbody>
${lines}
<tr><td>${esc(w.net)}</td><td class="n" id="receipt-net">${m(r.total_excl_vat)}</td></tr>
<tr><td>${esc(w.vat)} ${esc(decimal(r.vat_percent, lang))} %</td><td class="n" id="receipt-vat">${m(r.vat)}</td></tr>
<tr><th>${esc(w.total)}</th><th class="n" id="receipt-total">${m(r.total_incl_vat)}</th></tr>
<tr><td>${esc(w.captured)}</td><td class="n" id="receipt-captured">${m(r.captured)}</td></tr>
<tr><td>${esc(w.released_rest)}</td><td class="n" id="receipt-released">${m(r.released)}</td></tr>
</tbody>
</table>
${input.session.stop_requested_by === 'cost_cap' ? `<p class="box" id="stopped-by-cap">${esc(w.stopped_by_cap)}</p>` : ''}
<p><a href="${esc(input.pdf_url)}" id="receipt-pdf" download>${esc(w.download_pdf)}</a></p>
<p><a href="${esc(input.meter_url)}" id="meter-data" download>${esc(w.download_meter)}</a></p>
<section class="box" aria-labelledby="dispute-title">
<h2 id="dispute-title">${esc(w.dispute_title)}</h2>
${input.dispute === undefined ? dispute_form(input.receipt, input.dispute_url, lang, w, reasons) : dispute_case_view(input.dispute, lang, w)}
</section>`;
}

function dispute_form(r: Receipt, url: string, lang: Lang, w: Words, reasons: string): string {
  return `<form method="post" action="${esc(url)}" id="dispute-form">
<label for="dispute-reason">${esc(w.dispute_reason)}</label>
<select id="dispute-reason" name="reason" required>${reasons}</select>
<label for="dispute-amount">${esc(w.dispute_amount)} (${esc(r.currency)})</label>
<input id="dispute-amount" name="amount" inputmode="decimal" required pattern="[0-9]{1,9}([.,][0-9]{1,2})?" value="${esc(decimal(r.captured, lang))}">
<label for="dispute-message">${esc(w.dispute_message)}</label>
<textarea id="dispute-message" name="message" rows="3" maxlength="2000" required></textarea>
<button type="submit" class="secondary" id="dispute">${esc(w.dispute_button)}</button>
</form>`;
}

function dispute_case_view(
  d: { case: CaseView; bundle_pdf_url: string; bundle_json_url: string },
  lang: Lang,
  w: Words,
): string {
  const c = d.case;
  const findings = c.findings
    .map(
      (f) =>
        `<li data-check="${esc(f.check)}" data-status="${esc(f.status)}">${esc(w.finding_checks[f.check] ?? f.check)}: ${esc(w.finding_status[f.status] ?? f.status)}</li>`,
    )
    .join('');
  return `<p role="status" id="dispute-recorded">${esc(w.dispute_recorded)}</p>
<dl id="dispute-case" data-case-id="${esc(c.id)}" data-state="${esc(c.state)}">
<dt>${esc(w.dispute_case)}</dt><dd id="dispute-case-id">${esc(c.id)}</dd>
<dt>${esc(w.dispute_state)}</dt><dd id="dispute-state">${esc(w.dispute_states[c.state] ?? c.state)}</dd>
<dt>${esc(w.dispute_reason_given)}</dt><dd id="dispute-reason-given">${esc(w.dispute_reasons[c.reason] ?? c.reason)}</dd>
<dt>${esc(w.dispute_amount_given)}</dt><dd id="dispute-amount-given">${esc(money(text_of_minor(c.amount_disputed_minor, c.currency), c.currency, lang))}</dd>
</dl>
${findings === '' ? '' : `<h3>${esc(w.dispute_findings)}</h3><ul id="dispute-findings">${findings}</ul>`}
<p><a href="${esc(d.bundle_pdf_url)}" id="dispute-bundle-pdf" download>${esc(w.dispute_bundle_pdf)}</a></p>
<p><a href="${esc(d.bundle_json_url)}" id="dispute-bundle-json" download>${esc(w.dispute_bundle_json)}</a></p>`;
}
