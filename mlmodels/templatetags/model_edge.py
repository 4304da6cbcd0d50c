"""``{% active_models_edge %}``: the active models and their out-of-sample edge, for any page.

A template tag rather than a context entry of the trading dashboard's view, so ``trading`` does
not import ``mlmodels`` (ARCHITECTURE.md's dependency rules): the template names the library."""

from django import template

register = template.Library()


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2%}"


@register.inclusion_tag("mlmodels/_active_models.html")
def active_models_edge() -> dict:
    # Imported here, not at the top: Django's template checks import every tag library at
    # start-up, and the selectors pull in the training stack (scikit-learn, SciPy, pandas).
    from mlmodels.selectors import model_edges_active

    rows = []
    for version, activation in model_edges_active():
        baseline = version.edge_baseline
        rows.append(
            {
                "name": version.name,
                "version": version.version,
                "accuracy": _pct(version.accuracy(version.name)),
                "baseline": f"{baseline} {_pct(version.accuracy(baseline))}" if baseline else "-",
                "edge": "-" if version.edge is None else f"{version.edge * 100:+.2f} pts",
                "negative": version.edge is not None and version.edge < 0,
                "bars": version.edge_rows,
                "p_value": "-" if version.edge_p_value is None else f"{version.edge_p_value:.3f}",
                "has_edge": version.has_edge,
                "override": activation if activation is not None and activation.no_edge_override else None,
            }
        )
    return {"rows": rows, "none_has_edge": bool(rows) and not any(r["has_edge"] for r in rows)}
