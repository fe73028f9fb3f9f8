"""The review as Markdown for a pull-request comment: the alarming things first, the details folded.

A GitHub comment holds 65,536 characters; the CDK diff of a big change does not fit. The summary
tables always do; the per-stack CDK diffs are cut to fit `limit`, with a pointer to the full text
(written next to the report by `mlops infra diff`).
"""

from __future__ import annotations

import re

from review.compare import STATEFUL, Review, StackReview
from review.cost import Usage

MARKER = "<!-- mlops-infra-review -->"  # the workflow finds and updates its own comment by this
MAX_ROWS = 40


def render(review: Review, *, limit: int = 60_000) -> str:
    head = "\n".join([*_summary(review), *_data_loss(review), *_iam(review), *_network(review),
                      *_nag(review), *_cost(review)])
    details = [_stack_details(s) for s in review.stacks if s.status != "unchanged"]
    budget = limit - len(head) - 200
    shown: list[str] = []
    for block in details:
        if len(block) > budget:
            shown.append(f"\n_{len(details) - len(shown)} more stack diff(s) left out to fit a comment: "
                         "see the full review in the run's artifact._")
            break
        shown.append(block)
        budget -= len(block)
    text = "\n".join([head, "", "### Per stack", "", *shown]) if details else head
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"


def _summary(r: Review) -> list[str]:
    changed = [s for s in r.stacks if s.status != "unchanged"]
    out = [MARKER, f"## Infrastructure review: `{r.base}` → `{r.head}`", ""]
    if r.data_loss:
        out += ["> [!CAUTION]", f"> **Data loss:** {len(r.data_loss)} stateful resource(s) would be deleted, "
                "replaced or dropped from their stack. Read *Data loss* below before merging.", ""]
    if r.iam_loud or r.network_loud:
        out += ["> [!WARNING]", f"> **Security:** {len(r.iam_loud)} IAM widening(s), {len(r.network_loud)} "
                "network exposure(s).", ""]
    if not changed:
        return [*out, f"No infrastructure change: all {len(r.stacks)} stack template(s) are identical.", ""]
    out += ["| Stack | Status | Added | Removed | Changed | Replaced | Data loss | IAM widening | Network |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for s in changed:
        loud_iam = sum(1 for c in s.iam if c.loud)
        loud_net = sum(1 for c in s.network if c.loud)
        out.append(f"| `{s.name}` | {s.status} | {s.count('added')} | {s.count('removed')} | "
                   f"{s.count('changed')} | {s.replaced} | {_warn(len(s.data_loss))} | {_warn(loud_iam)} | "
                   f"{_warn(loud_net)} |")
    unchanged = len(r.stacks) - len(changed)
    return [*out, "", f"{unchanged} other stack(s) unchanged." if unchanged else "", ""]


def _warn(n: int) -> str:
    return f"⚠️ {n}" if n else "-"


def _data_loss(r: Review) -> list[str]:
    if not r.data_loss:
        return []
    out = ["### ⚠️ Data loss", ""]
    for d in r.data_loss:
        c = d.change
        out.append(f"- **{d.what.upper()}** `{c.path or c.logical_id}` ({c.type} `{c.logical_id}`, "
                   f"stack `{d.stack}`): {d.detail}.")
    return [*out, ""]


def _iam(r: Review) -> list[str]:
    changes = [c for s in r.stacks for c in s.iam]
    narrowed = sum(s.iam_narrowed for s in r.stacks)
    if not changes and not narrowed:
        return []
    out = ["### IAM", "", f"{len(changes)} new grant(s), {narrowed} removed or denied."]
    if changes:
        out += ["", "| | Kind | Who | Action | Resource | Condition | Flags |", "|---|---|---|---|---|---|---|"]
        for c in sorted(changes, key=lambda c: (not c.loud, c.stack, c.grant))[:MAX_ROWS]:
            g = c.grant
            out.append(f"| {'⚠️' if c.loud else ''} | {g.kind} | {_code(g.subject)} | {_code(g.action)} | "
                       f"{_code(g.resource)} | {_code(g.condition)} | {', '.join(c.flags)} |")
        out += _more(len(changes))
    return [*out, ""]


def _network(r: Review) -> list[str]:
    changes = [c for s in r.stacks for c in s.network]
    if not changes:
        return []
    out = ["### Network", ""]
    for c in sorted(changes, key=lambda c: not c.loud)[:MAX_ROWS]:
        out.append(f"- {'⚠️ ' if c.loud else ''}{c.what} — `{c.resource}` (stack `{c.stack}`)")
    return [*out, *_more(len(changes)), ""]


def _nag(r: Review) -> list[str]:
    if not r.nag_added and not r.nag_resolved:
        return []
    out = ["### cdk-nag findings", "", f"{len(r.nag_added)} added, {len(r.nag_resolved)} resolved."]
    for title, findings in (("Added", r.nag_added), ("Resolved", r.nag_resolved)):
        if findings:
            out += ["", f"**{title}**", "", "| Rule | Stack | Resource | Finding |", "|---|---|---|---|"]
            out += [f"| {f.rule} | `{f.stack}` | {_code(f.resource)} | {_cell(f.message)} |"
                    for f in findings[:MAX_ROWS]]
            out += _more(len(findings))
    return [*out, ""]


def _cost(r: Review) -> list[str]:
    lines = [line for s in r.stacks for line in s.cost]
    if not lines:
        return []
    p = r.prices
    cur = p["currency"]
    known = [line.delta for line in lines if line.delta is not None]
    out = ["### Monthly cost estimate", "",
           f"On-demand {cur}, {p['region']}, prices as of {p['as_of']} (`review/prices.json`). "
           f"**Change: {_money(sum(known), cur, sign=True)} per month**"
           + (f" ({len(lines) - len(known)} item(s) without a price in the table)." if len(known) < len(lines)
              else "."),
           "", "| Stack | Resource | What | Before | After | Hours/month | Before/month | After/month | Change |",
           "|---|---|---|---|---|--:|--:|--:|--:|"]
    for line in lines[:MAX_ROWS]:
        u = line.after or line.before
        assert u is not None
        out.append(f"| `{u.stack}` | `{u.resource}` | {u.label} ({u.kind}) | {_usage(line.before)} | "
                   f"{_usage(line.after)} | {u.hours:g} | {_money(line.before_cost, cur) if line.before else '-'} | "
                   f"{_money(line.after_cost, cur) if line.after else '-'} | {_money(line.delta, cur, sign=True)} |")
    notes = "; ".join(f"{k}: {v['note']}" for k, v in p["usage"].items() if "note" in v)
    return [*out, *_more(len(lines)), "", f"_Assumed usage — {notes}._", ""]


def _usage(u: Usage | None) -> str:
    return "-" if u is None else f"{u.count:g} x {u.instance}"


def _money(v: float | None, cur: str, *, sign: bool = False) -> str:
    if v is None:
        return "no price"
    return f"{'+' if sign and v > 0 else ''}{v:,.2f} {cur}"


def _stack_details(s: StackReview) -> str:
    counts = (f"{s.count('added')} added, {s.count('removed')} removed, {s.count('changed')} changed, "
              f"{s.replaced} replaced")
    out = [f"<details><summary><code>{s.name}</code> — {s.status}: {counts}</summary>", ""]
    if s.changes:
        out += ["| | Type | Resource | Impact | Properties |", "|---|---|---|---|---|"]
        for c in s.changes[:MAX_ROWS]:
            props = ", ".join(p.name + (f" ({p.replacement})" if p.replacement else "") for p in c.properties)
            impact = c.impact or "-"
            if c.impact in ("replace", "may be replaced") and c.type not in STATEFUL:
                impact += " (holds no data)"
            out.append(f"| {c.action} | {c.type} | {_code(c.path or c.logical_id)} | {impact} | "
                       f"{_cell(props)} |")
        out += _more(len(s.changes))
    if s.cdk_diff:
        text = s.cdk_diff if len(s.cdk_diff) < 15_000 else s.cdk_diff[:15_000] + "\n… (cut: see the artifact)"
        out += ["", "`cdk diff`:", "", "```", text.replace("```", "`\u200b``"), "```"]
    elif s.status == "removed":
        out += ["", "The whole stack is gone from the app: `cdk deploy` leaves it, `cdk destroy` deletes it."]
    return "\n".join([*out, "", "</details>"])


def _more(n: int) -> list[str]:
    return ["", f"_… and {n - MAX_ROWS} more._"] if n > MAX_ROWS else []


def _code(v: str) -> str:
    return f"`{_cell(v)}`" if v else ""


def _cell(v: str) -> str:
    return v.replace("|", "\\|").replace("\n", " ")

