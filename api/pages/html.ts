import type http from 'node:http';
import type { Lang } from './i18n.js';

/** Text into HTML: every character that could open markup or end an attribute is escaped. */
export function esc(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Mobile first, one column, system fonts, 16 px and up; colours at WCAG AA contrast or better
 * (#111 on #fff is 18.9:1, #fff on #0b5a36 is 7.9:1, #7a1212 on #fde8e8 is 8.6:1); a visible
 * focus ring for keyboard use.
 */
const css = `
*{box-sizing:border-box}
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;background:#fff}
main{max-width:34rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.state{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;border:2px solid currentColor}
.state-free{color:#0b5a36}.state-occupied{color:#7a4a00}.state-offline{color:#7a1212}
.box{border:1px solid #767676;border-radius:.5rem;padding:1rem;margin:1rem 0}
.alert{background:#fde8e8;color:#7a1212;border-color:#7a1212}
.ok{background:#e6f4ec;color:#0b3d25;border-color:#0b5a36}
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:0}
dt{font-weight:600}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse}td,th{padding:.35rem 0;text-align:left;border-bottom:1px solid #ddd}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
button,.button{display:block;width:100%;min-height:3rem;margin:1rem 0;padding:.75rem 1rem;font:inherit;font-weight:600;
  color:#fff;background:#0b5a36;border:0;border-radius:.5rem;cursor:pointer;text-align:center;text-decoration:none}
button.stop{background:#7a1212}
button.secondary{background:#fff;color:#0b5a36;border:2px solid #0b5a36}
button:disabled{background:#595959}
a{color:#0b3d91}
:focus-visible{outline:3px solid #0b3d91;outline-offset:2px}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
select,textarea{width:100%;font:inherit;padding:.5rem;border:1px solid #595959;border-radius:.35rem}
#card-element{padding:.75rem;border:1px solid #595959;border-radius:.35rem;min-height:3rem}
.small{font-size:.9rem;color:#333}
nav.lang{text-align:right;font-size:.9rem}
`;

export interface PageOptions {
  lang: Lang;
  title: string;
  body: string;
  /** URL of this page in the other language. */
  other_lang_url?: string;
  other_lang_label?: string;
  /** Scripts loaded at the end of the body (ours and the payment provider's). */
  scripts?: string[];
}

export function page(options: PageOptions): string {
  const scripts = (options.scripts ?? []).map((src) => `<script src="${esc(src)}"></script>`).join('');
  const nav =
    options.other_lang_url === undefined
      ? ''
      : `<nav class="lang" aria-label="Language"><a href="${esc(options.other_lang_url)}" lang="${options.lang === 'de' ? 'en' : 'de'}">${esc(options.other_lang_label ?? '')}</a></nav>`;
  return `<!doctype html>
<html lang="${options.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(options.title)}</title>
<style>${css}</style>
</head>
<body>
<main>
${nav}
${options.body}
</main>
${scripts}
</body>
</html>`;
}

/**
 * Sends a page. The Content-Security-Policy lets scripts, frames and connections come from this
 * origin and the payment provider's only (its card field is its own frame or script), and no page
 * may be framed by another site.
 */
export function send_html(
  res: http.ServerResponse,
  status: number,
  html: string,
  provider_origin: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(html, 'utf8');
  res.writeHead(status, {
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(body.length),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'content-security-policy': [
      "default-src 'self'",
      `script-src 'self' ${provider_origin}`,
      `frame-src ${provider_origin}`,
      `connect-src 'self' ${provider_origin}`,
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data:",
      "frame-ancestors 'none'",
      "form-action 'self'",
    ].join('; '),
  });
  res.end(body);
}
