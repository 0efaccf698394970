// The pages' texts in the reader's language (hms_app/components/i18n.py). The catalogues are
// compiled from hms_app/locale/*/LC_MESSAGES/messages.po by `hms i18n compile` into messages.js.
import { useEffect } from "react";
import { CATALOGS, PLURALS } from "./messages.js";

const SHIPPED = ["en", ...Object.keys(CATALOGS)];
const RIGHT_TO_LEFT = ["ar", "he", "fa", "ur"];

function shipped(tag) {
  const language = String(tag || "").split(/[-_]/)[0].toLowerCase();
  return SHIPPED.includes(language) ? language : "";
}

// Before the server has said (the first paint of a page), the document's direction follows the
// choice made on this device, then the browser's preference. Texts stay in English until then,
// as the page was prerendered, so hydration finds what it expects.
function guessLanguage() {
  if (typeof window === "undefined") return "en";
  const kept = document.cookie.match(/(?:^|;\s*)hms_language=([a-z]+)/);
  if (kept && shipped(kept[1])) return shipped(kept[1]);
  for (const tag of window.navigator.languages || [window.navigator.language]) {
    if (shipped(tag)) return shipped(tag);
  }
  return "en";
}

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name] ?? "") : whole));
}

export function hmsT(language, id, params) {
  const catalog = CATALOGS[language];
  const found = catalog ? catalog[id] : undefined;
  // A text with a context ("time off\u0004Leave") reads as its text when untranslated.
  return fill(typeof found === "string" && found ? found : id.split("\u0004").pop(), params);
}

export function hmsTn(language, singular, plural, count, params) {
  const lang = language;
  const catalog = CATALOGS[lang];
  const forms = catalog ? catalog[singular] : undefined;
  const n = Number(count) || 0;
  let text = n === 1 ? singular : plural;
  if (Array.isArray(forms)) {
    const chosen = forms[Number(PLURALS[lang](n))];
    if (chosen) text = chosen;
  }
  return fill(text, { n, ...(params || {}) });
}

// Sets the document's language, direction and title once the server has said them.
export function HmsDocument({ language, title }) {
  useEffect(() => {
    const lang = language || guessLanguage();
    document.documentElement.lang = lang;
    document.documentElement.dir = RIGHT_TO_LEFT.includes(lang) ? "rtl" : "ltr";
    if (language) {
      // Kept on this device for a year: the next visit's first paint, and the server reads it
      // for a visitor (the login page) before anyone has signed in.
      document.cookie = `hms_language=${language}; path=/; max-age=31536000; samesite=strict`;
    }
  }, [language]);
  useEffect(() => {
    if (title) document.title = title;
  }, [title]);
  return null;
}
