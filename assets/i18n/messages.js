// Compiled from hms_app/locale/*/LC_MESSAGES/messages.po by `hms i18n compile`: do not edit.
export const CATALOGS = {
"ar": {},
"es": {}
};
export const PLURALS = {
  "es": (n) => (n == 1 ? 0 : n != 0 && n % 1000000 == 0 ? 1 : 2),
  "ar": (n) => (n == 0 ? 0 : n == 1 ? 1 : n == 2 ? 2 : n % 100 >= 3 && n % 100 <= 10 ? 3 : n % 100 >= 11 && n % 100 <= 99 ? 4 : 5),
};
