import type http from 'node:http';

/**
 * The pages' words in English and German. The language is `?lang=` when given (en, de), else the
 * best of the browser's Accept-Language, else English.
 */
export type Lang = 'en' | 'de';

export function lang_of(req: http.IncomingMessage, url: URL): Lang {
  const asked = url.searchParams.get('lang');
  if (asked === 'de' || asked === 'en') return asked;
  const header = req.headers['accept-language'] ?? '';
  let best: { lang: Lang; q: number } = { lang: 'en', q: -1 };
  for (const part of header.split(',').slice(0, 20)) {
    const [tag, ...params] = part.trim().toLowerCase().split(';');
    const q_param = params.find((p) => p.trim().startsWith('q='));
    const q = q_param === undefined ? 1 : Number(q_param.trim().slice(2));
    const base = tag?.split('-')[0];
    if ((base === 'de' || base === 'en') && Number.isFinite(q) && q > best.q) best = { lang: base, q };
  }
  return best.lang;
}

/** An amount's decimal text ("12.34") as people of the language write it, with its currency. */
export function money(text: string, currency: string, lang: Lang): string {
  return lang === 'de' ? `${text.replace('.', ',')} ${currency}` : `${currency} ${text}`;
}

export function decimal(text: string, lang: Lang): string {
  return lang === 'de' ? text.replace('.', ',') : text;
}

const en = {
  title_evse: 'Charge here',
  charger: 'Charger',
  evse: 'Charging point',
  state: 'State',
  state_free: 'Free',
  state_occupied: 'Occupied',
  state_offline: 'Offline',
  tariff: 'Price',
  per_kwh: 'per kWh',
  per_hour: 'per hour charging',
  per_hour_parking: 'per hour parked after charging',
  per_session: 'per session',
  at_some_times: '(at some times or conditions)',
  incl_vat: 'incl. VAT',
  example: (kwh: string, min: string, cost: string) => `${kwh} kWh in ${min} minutes costs about ${cost}.`,
  hold_title: 'Amount reserved on your card',
  hold_text: (amount: string) =>
    `We reserve ${amount} on your card before charging. You pay only what you charge; the rest is released when you stop. Charging stops on its own before the cost reaches this amount.`,
  hold_source_site: 'Set by the operator for this site.',
  hold_source_max_price: 'The maximum price of this tariff.',
  hold_source_estimate: (kw: string, min: string) => `Full power (${kw} kW) for ${min} minutes.`,
  pay_start: 'Continue to payment',
  not_free: 'This charging point is not free right now. Please try again later or use another one.',
  offline: 'This charger is offline. You cannot start a session here right now; nothing is charged.',
  title_pay: 'Pay and charge',
  card: 'Card',
  pay_button: (amount: string) => `Reserve ${amount} and start`,
  card_note: 'Your card details go straight to our payment provider; they never reach our server.',
  needs_js: 'Payment needs JavaScript for the payment provider’s secure card field.',
  declined: 'Your card was declined',
  declined_text: 'Nothing was reserved or charged. You can try another card.',
  try_again: 'Try another card',
  title_session: 'Charging',
  starting: 'Starting the charger. Plug in your car if you have not yet.',
  charging: 'Charging',
  stopping: 'Stopping…',
  energy: 'Energy',
  duration: 'Duration',
  running_cost: 'Cost so far',
  reserved: 'Reserved',
  stop: 'Stop charging',
  live_note:
    'This page updates by itself. You may close it: charging goes on, and this browser can open it again.',
  released_title: 'No charge',
  released: {
    charger_offline: 'The charger is offline and could not start.',
    start_refused: 'The charger refused to start.',
    no_session: 'No car was connected in time.',
    no_power: 'The car did not draw any power.',
    stopped_before_start: 'You stopped before charging started.',
    nothing_due: 'Nothing was due for this session.',
    cost_cap: 'The session was stopped.',
    no_power_timeout: 'The car did not draw any power.',
  } as Record<string, string>,
  released_text: (amount: string) =>
    `The reservation of ${amount} on your card was released. Nothing was charged.`,
  failed: 'Something went wrong with this payment.',
  other_browser: 'This charging session belongs to another browser.',
  other_browser_text: 'Only the browser that paid can see or stop it.',
  back: 'Back to the charging point',
  title_receipt: 'Receipt',
  receipt_lines: { energy: 'Energy', time: 'Charging time', parking: 'Parking time', fixed: 'Session fee' },
  net: 'Total excl. VAT',
  vat: 'VAT',
  total: 'Total',
  captured: 'Charged to your card',
  released_rest: 'Released reservation',
  period: 'Time',
  tariff_version: 'Tariff',
  stopped_by_cap: 'Charging was stopped before the cost reached your reservation.',
  download_pdf: 'Download the receipt (PDF)',
  download_meter: 'Download the charger’s signed meter data',
  dispute_title: 'Something wrong?',
  dispute_reason: 'Reason',
  // The disputes module's reason codes (billing/disputes/workflow.ts dispute_reasons).
  dispute_reasons: {
    energy: 'The energy (kWh) is wrong',
    time_idle_fee: 'The charging or parking time is wrong',
    tariff: 'The price per kWh or hour is wrong',
    duplicate_charge: 'I was charged twice',
    failed_session: 'My car was not charged',
    not_my_session: 'This was not my session',
    other: 'Something else',
  } as Record<string, string>,
  dispute_amount: 'Amount you dispute',
  dispute_message: 'Tell us what happened',
  dispute_button: 'Dispute this charge',
  dispute_recorded: 'Your dispute was received. We will look into it and answer you.',
  dispute_case: 'Dispute case',
  dispute_state: 'State',
  dispute_states: {
    open: 'Received, not yet looked at',
    investigating: 'Being investigated',
    proposed_resolution: 'A resolution is proposed',
    resolved: 'Resolved',
    escalated: 'With a mediator',
  } as Record<string, string>,
  dispute_reason_given: 'Your reason',
  dispute_amount_given: 'Amount disputed',
  dispute_findings: 'Automatic checks of your session',
  finding_status: {
    ok: 'ok',
    warning: 'to look at',
    failed: 'failed',
    not_applicable: 'not applicable',
  } as Record<string, string>,
  finding_checks: {
    energy_vs_power: 'Energy against the charger power',
    register_continuity: 'Meter register continuity',
    readings_after_stop: 'Readings after the stop',
    duplicate_sessions: 'Duplicate sessions',
    tariff_version: 'Tariff version applied',
    clock_sync: "Charger's clock",
    signatures: 'Signed meter values',
    rating_anomalies: 'Rating',
  } as Record<string, string>,
  dispute_bundle_pdf: 'Download the evidence of your session (PDF)',
  dispute_bundle_json: 'Download the evidence of your session (JSON, with checksums)',
  authentication_failed:
    'Your bank did not confirm the payment (3-D Secure). Nothing was reserved on your card.',
  too_many: 'Too many requests. Please wait a moment and try again.',
  not_found: 'Not found.',
  language: 'Deutsch',
};

export type Words = typeof en;

const de: Words = {
  title_evse: 'Hier laden',
  charger: 'Ladestation',
  evse: 'Ladepunkt',
  state: 'Zustand',
  state_free: 'Frei',
  state_occupied: 'Belegt',
  state_offline: 'Offline',
  tariff: 'Preis',
  per_kwh: 'pro kWh',
  per_hour: 'pro Stunde Laden',
  per_hour_parking: 'pro Stunde Parken nach dem Laden',
  per_session: 'pro Ladevorgang',
  at_some_times: '(zu bestimmten Zeiten oder Bedingungen)',
  incl_vat: 'inkl. MwSt.',
  example: (kwh, min, cost) => `${kwh} kWh in ${min} Minuten kosten etwa ${cost}.`,
  hold_title: 'Auf Ihrer Karte reservierter Betrag',
  hold_text: (amount) =>
    `Vor dem Laden reservieren wir ${amount} auf Ihrer Karte. Sie zahlen nur, was Sie laden; der Rest wird beim Beenden freigegeben. Das Laden endet von selbst, bevor die Kosten diesen Betrag erreichen.`,
  hold_source_site: 'Vom Betreiber für diesen Standort festgelegt.',
  hold_source_max_price: 'Der Höchstpreis dieses Tarifs.',
  hold_source_estimate: (kw, min) => `Volle Leistung (${kw} kW) für ${min} Minuten.`,
  pay_start: 'Weiter zur Zahlung',
  not_free:
    'Dieser Ladepunkt ist gerade nicht frei. Bitte später erneut versuchen oder einen anderen nutzen.',
  offline:
    'Diese Ladestation ist offline. Ein Ladevorgang kann gerade nicht gestartet werden; es wird nichts berechnet.',
  title_pay: 'Bezahlen und laden',
  card: 'Karte',
  pay_button: (amount) => `${amount} reservieren und starten`,
  card_note:
    'Ihre Kartendaten gehen direkt an unseren Zahlungsdienstleister und erreichen nie unseren Server.',
  needs_js: 'Die Zahlung braucht JavaScript für das sichere Kartenfeld des Zahlungsdienstleisters.',
  declined: 'Ihre Karte wurde abgelehnt',
  declined_text: 'Es wurde nichts reserviert oder berechnet. Sie können eine andere Karte versuchen.',
  try_again: 'Andere Karte versuchen',
  title_session: 'Laden',
  starting: 'Die Ladestation startet. Stecken Sie Ihr Auto an, falls noch nicht geschehen.',
  charging: 'Lädt',
  stopping: 'Wird beendet…',
  energy: 'Energie',
  duration: 'Dauer',
  running_cost: 'Kosten bisher',
  reserved: 'Reserviert',
  stop: 'Laden beenden',
  live_note:
    'Diese Seite aktualisiert sich selbst. Sie können sie schließen: Das Laden geht weiter, und dieser Browser kann sie wieder öffnen.',
  released_title: 'Keine Kosten',
  released: {
    charger_offline: 'Die Ladestation ist offline und konnte nicht starten.',
    start_refused: 'Die Ladestation hat den Start abgelehnt.',
    no_session: 'Es wurde rechtzeitig kein Auto angesteckt.',
    no_power: 'Das Auto hat keinen Strom bezogen.',
    stopped_before_start: 'Sie haben vor dem Ladebeginn beendet.',
    nothing_due: 'Für diesen Ladevorgang ist nichts zu zahlen.',
    cost_cap: 'Der Ladevorgang wurde beendet.',
    no_power_timeout: 'Das Auto hat keinen Strom bezogen.',
  },
  released_text: (amount) =>
    `Die Reservierung von ${amount} auf Ihrer Karte wurde freigegeben. Es wurde nichts berechnet.`,
  failed: 'Bei dieser Zahlung ist etwas schiefgegangen.',
  other_browser: 'Dieser Ladevorgang gehört zu einem anderen Browser.',
  other_browser_text: 'Nur der Browser, der bezahlt hat, kann ihn sehen oder beenden.',
  back: 'Zurück zum Ladepunkt',
  title_receipt: 'Beleg',
  receipt_lines: { energy: 'Energie', time: 'Ladezeit', parking: 'Parkzeit', fixed: 'Grundgebühr' },
  net: 'Summe ohne MwSt.',
  vat: 'MwSt.',
  total: 'Gesamt',
  captured: 'Von Ihrer Karte abgebucht',
  released_rest: 'Freigegebene Reservierung',
  period: 'Zeit',
  tariff_version: 'Tarif',
  stopped_by_cap: 'Das Laden wurde beendet, bevor die Kosten Ihre Reservierung erreichten.',
  download_pdf: 'Beleg herunterladen (PDF)',
  download_meter: 'Signierte Messdaten der Ladestation herunterladen',
  dispute_title: 'Stimmt etwas nicht?',
  dispute_reason: 'Grund',
  dispute_reasons: {
    energy: 'Die Energie (kWh) stimmt nicht',
    time_idle_fee: 'Die Lade- oder Standzeit stimmt nicht',
    tariff: 'Der Preis pro kWh oder Stunde stimmt nicht',
    duplicate_charge: 'Mir wurde doppelt berechnet',
    failed_session: 'Mein Auto wurde nicht geladen',
    not_my_session: 'Das war nicht mein Ladevorgang',
    other: 'Etwas anderes',
  },
  dispute_amount: 'Beanstandeter Betrag',
  dispute_message: 'Was ist passiert?',
  dispute_button: 'Diese Abbuchung beanstanden',
  dispute_recorded: 'Ihre Beanstandung ist eingegangen. Wir prüfen sie und antworten Ihnen.',
  dispute_case: 'Beanstandung',
  dispute_state: 'Stand',
  dispute_states: {
    open: 'Eingegangen, noch nicht bearbeitet',
    investigating: 'Wird geprüft',
    proposed_resolution: 'Eine Lösung wird vorgeschlagen',
    resolved: 'Abgeschlossen',
    escalated: 'Bei einer Schlichtungsstelle',
  },
  dispute_reason_given: 'Ihr Grund',
  dispute_amount_given: 'Beanstandeter Betrag',
  dispute_findings: 'Automatische Prüfungen Ihres Ladevorgangs',
  finding_status: {
    ok: 'in Ordnung',
    warning: 'zu prüfen',
    failed: 'fehlgeschlagen',
    not_applicable: 'entfällt',
  },
  finding_checks: {
    energy_vs_power: 'Energie gegenüber der Ladeleistung',
    register_continuity: 'Stetigkeit des Zählerstands',
    readings_after_stop: 'Messwerte nach dem Ende',
    duplicate_sessions: 'Doppelte Ladevorgänge',
    tariff_version: 'Angewandte Tarifversion',
    clock_sync: 'Uhr der Ladestation',
    signatures: 'Signierte Messwerte',
    rating_anomalies: 'Preisberechnung',
  },
  dispute_bundle_pdf: 'Nachweise Ihres Ladevorgangs herunterladen (PDF)',
  dispute_bundle_json: 'Nachweise Ihres Ladevorgangs herunterladen (JSON, mit Prüfsummen)',
  authentication_failed:
    'Ihre Bank hat die Zahlung nicht bestätigt (3-D Secure). Auf Ihrer Karte wurde nichts reserviert.',
  too_many: 'Zu viele Anfragen. Bitte einen Moment warten und erneut versuchen.',
  not_found: 'Nicht gefunden.',
  language: 'English',
};

export function words(lang: Lang): Words {
  return lang === 'de' ? de : en;
}
