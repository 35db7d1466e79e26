// Exemplary safe streets and houses (DESIGN §12): the candidates, and for every street and
// house each criterion's figure and verdict, so the team sees why the others miss. Houses
// come one by one to the console only; an observer gets them as counts per street (§10).

import { h } from "../shared/dom.js";
import { formatDuration, formatPct, table, verdict } from "./format.js";
import { formatNumber, label, t } from "./strings.js";

function cell(criterion, text) {
  return h("span", { class: "criterion" }, text, " ", verdict(criterion.met));
}

function mahallaLine(row, thresholds) {
  const item = row.criteria.response_p80_on_scene;
  const limit = formatDuration(thresholds.on_scene_p80_s);
  const text =
    item.value === null
      ? t("exemplary.mahalla-no-arrivals", { limit })
      : t("exemplary.mahalla-response", { figure: formatDuration(item.value), limit, count: item.arrivals });
  return h("p", { class: "exemplary-mahalla", "data-exemplary": String(row.exemplary) }, text, " ", verdict(item.met));
}

function streetRows(streets) {
  return streets.map((street) => {
    const { coverage, no_confirmed_incident: incidents, online } = street.criteria;
    return [
      street.street,
      cell(coverage, t("exemplary.coverage-figure", { pct: formatPct(coverage.value), protected: street.protected, premises: street.premises })),
      cell(incidents, formatNumber(incidents.value)),
      cell(online, formatPct(online.value)),
      h("strong", { class: street.exemplary ? "candidate" : "not-candidate" }, t(street.exemplary ? "exemplary.yes" : "exemplary.no")),
    ];
  });
}

function siteRows(sites) {
  return sites.map((site) => {
    const { protected: guarded, online, no_confirmed_incident: incidents, monthly_tests: tests } = site.criteria;
    const name = [site.ref, site.name, site.address].filter(Boolean).join(" · ") || site.devices.join(", ");
    return [
      name,
      site.street || t("exemplary.no-street"),
      label("site", site.site),
      cell(guarded, t(guarded.value ? "exemplary.protected" : "exemplary.unprotected")),
      cell(online, formatPct(online.value)),
      cell(incidents, formatNumber(incidents.value)),
      cell(tests, t("exemplary.tests-figure", { tested: tests.value, required: tests.required })),
      h("strong", { class: site.exemplary ? "candidate" : "not-candidate" }, t(site.exemplary ? "exemplary.yes" : "exemplary.no")),
    ];
  });
}

function byStreetRows(groups) {
  return groups.map((group) => [
    group.street || t("exemplary.no-street"),
    formatNumber(group.sites),
    formatNumber(group.exemplary),
    formatNumber(group.missing.protected),
    formatNumber(group.missing.online),
    formatNumber(group.missing.no_confirmed_incident),
    formatNumber(group.missing.monthly_tests),
  ]);
}

// figures: GET /api/v1/stats/exemplary?mahalla_id=… (or the report's "exemplary").
export function renderExemplary(container, figures) {
  const thresholds = figures.thresholds;
  const parts = [
    h(
      "p",
      { class: "muted" },
      t("exemplary.rules", {
        coverage: formatPct(thresholds.street_coverage_pct),
        online: formatPct(thresholds.online_pct),
        limit: formatDuration(thresholds.on_scene_p80_s),
      }),
    ),
    ...figures.mahallas.map((row) => mahallaLine(row, thresholds)),
    h("h3", {}, t("exemplary.streets")),
  ];
  parts.push(
    figures.streets.length
      ? table(
          [t("exemplary.street"), t("exemplary.coverage"), t("exemplary.incidents"), t("exemplary.online"), t("exemplary.verdict")],
          streetRows(figures.streets),
          { className: "data-table exemplary-streets" },
        )
      : h("p", { class: "muted" }, t("exemplary.no-streets")),
  );
  parts.push(h("h3", {}, t("exemplary.houses")));
  if (Array.isArray(figures.sites)) {
    parts.push(
      figures.sites.length
        ? table(
            [t("exemplary.house"), t("exemplary.street"), t("exemplary.site"), t("exemplary.protection"), t("exemplary.online"), t("exemplary.incidents"), t("exemplary.tests"), t("exemplary.verdict")],
            siteRows(figures.sites),
            { className: "data-table exemplary-sites" },
          )
        : h("p", { class: "muted" }, t("exemplary.no-houses")),
    );
  } else {
    parts.push(h("p", { class: "muted" }, t("exemplary.houses-counted")));
    parts.push(
      figures.sites_by_street.length
        ? table(
            [t("exemplary.street"), t("exemplary.houses-count"), t("exemplary.candidates"), t("exemplary.miss-protection"), t("exemplary.miss-online"), t("exemplary.miss-incident"), t("exemplary.miss-tests")],
            byStreetRows(figures.sites_by_street),
            { className: "data-table exemplary-by-street" },
          )
        : h("p", { class: "muted" }, t("exemplary.no-houses")),
    );
  }
  container.replaceChildren(...parts);
}
