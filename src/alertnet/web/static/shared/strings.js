// The English text of the modules in shared/ (API errors, distances, risk classes); each
// page's strings module includes it in the page's one catalog.

export const SHARED_STRINGS = {
  "api.no-answer": "no answer in time ({request})",
  "api.no-connection": "no connection ({request})",
  "distance.unknown": "distance unknown",
  "distance.m": "{m} m",
  "distance.km": "{km} km",
  "risk.red": "RED risk",
  "risk.yellow": "YELLOW risk",
  "risk.green": "GREEN risk",
  "risk.unknown": "risk unknown",
};
