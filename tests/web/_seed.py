"""A registry with something on every page: three models, lineage, gates, a risk flag."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charter.domain.profile import parse_document
from charter.service import Registry

CREDIT_PROFILE = """
evaluations:
  - {name: accuracy, value: 0.91, samples: 300, ci: {low: 0.88, high: 0.94}}
  - {name: accuracy, value: 0.84, slice: "age_band=18-25", samples: 41}
  - {name: roc_auc, value: 0.93}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: female, value: 0.40, size: 310}, {group: male, value: 0.44, size: 690}]
  - sensitive_feature: age_band
    metric: selection_rate
    groups: [{group: "18-25", value: 0.38, size: 120}, {group: "26-40", value: 0.43, size: 480},
             {group: "41-65", value: 0.45, size: 330}, {group: "65+", value: 0.41, size: 70}]
adversarial:
  - pack: {name: charter-default, version: "1"}
    target: scoring endpoint (staging)
    attempts: 400
    hits: 6
    probes:
      - {probe: feature-poisoning, category: data-manipulation, attempts: 150, hits: 3}
      - {probe: threshold-probing, category: model-extraction, attempts: 150, hits: 2}
      - {probe: boundary-inputs, category: robustness, attempts: 100, hits: 1}
constraints:
  - max_input_chars: 4000
    intended_uses: ["Probability of default for retail credit applications"]
    out_of_scope_uses: ["Employment or housing decisions"]
"""

CREDIT_AMENDMENT = """
adversarial:
  - pack: {name: prompt-injection, version: "2"}
    target: explanation endpoint (staging)
    attempts: 120
    hits: 2
    probes:
      - {probe: ignore-previous, category: prompt-injection, attempts: 60, hits: 1}
      - {probe: system-leak, category: system-prompt-leak, attempts: 60, hits: 1}
"""

BOT_PROFILE = """
evaluations:
  - {name: helpfulness, value: 0.82, unit: score}
  - {name: toxicity_rate, value: 0.004}
adversarial:
  - {pack: {name: charter-default, version: "1"}, target: chat api, attempts: 200, hits: 6}
"""

BOT_OBSERVATION = """
adversarial:
  - pack: {name: live-jailbreaks, version: "3"}
    target: production traffic
    attempts: 100
    hits: 31
"""


@dataclass(frozen=True)
class Seeded:
    """What the fixture registry holds, and the tokens to log in with."""

    admin_token: str
    approver_token: str
    approver_token_id: str
    viewer_token: str


def _folder(root: Path, name: str, weights: bytes) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(weights)
    (folder / "config.json").write_text('{"layers": 3, "activation": "relu"}')
    return folder


def seed(registry: Registry, root: Path) -> Seeded:
    """Fill ``registry`` (acting as its admin, alice) and return login tokens.

    - ``credit-risk`` (high risk): 1.0.0 published, amended, card rendered, gated for
      staging and waiting for one approval; 1.1.0 (minor, new data) and a 2.0.0 draft.
    - ``support-bot`` (medium): 1.0.0 in staging, flagged at risk by monitoring.
    - ``demand-forecast`` (low): 0.1.0 and 0.2.0 promoted through staging and
      production, then production rolled back to 0.1.0.
    """
    reg = registry
    reg.add_user(name="bob", role="approver")
    reg.add_user(name="carol", role="viewer")
    train = root / "train-2025q4.csv"
    train.write_text("age,income,default\n31,52000,0\n45,61000,1\n")
    train2 = root / "train-2026q1.csv"
    train2.write_text("age,income,default\n31,52000,0\n45,61000,1\n27,38000,0\n")
    holdout = root / "holdout.csv"
    holdout.write_text("age,income,default\n52,70000,0\n")

    reg.create_model(name="credit-risk", risk_tier="high", owner="risk-team",
                     description="Probability of default for retail loans")  # fmt: skip
    reg.register(model="credit-risk", path=_folder(root, "cr1", b"w1" * 500), version="1.0.0",
                 datasets=[("train", str(train)), ("eval", str(holdout))], params={"C": "0.5"},
                 run_id="run-118", commit="9f1c2e7d",
                 profile=parse_document(CREDIT_PROFILE))  # fmt: skip
    reg.publish(model="credit-risk", version="1.0.0")
    reg.amend_profile(model="credit-risk", version="1.0.0",
                      document=parse_document(CREDIT_AMENDMENT),
                      reason="Red-team campaign on the explanation endpoint")  # fmt: skip
    reg.render_card(model="credit-risk", version="1.0.0", fmt="html")
    reg.gate(model="credit-risk", version="1.0.0", stage="staging")
    reg.register(model="credit-risk", path=_folder(root, "cr2", b"w2" * 500), version="1.1.0",
                 parent="1.0.0", change="minor", datasets=[("train", str(train2)),
                 ("eval", str(holdout))], params={"C": "0.5"}, run_id="run-131")  # fmt: skip
    reg.publish(model="credit-risk", version="1.1.0")
    reg.register(model="credit-risk", path=_folder(root, "cr3", b"w3" * 500), version="2.0.0",
                 parent="1.1.0", change="major", architecture="gbm-v2",
                 datasets=[("train", str(train2))], run_id="run-140")  # fmt: skip

    reg.create_model(name="support-bot", risk_tier="medium", owner="cx-team",
                     description="Customer support assistant")  # fmt: skip
    reg.register(model="support-bot", path=_folder(root, "sb1", b"s1" * 500), version="1.0.0",
                 profile=parse_document(BOT_PROFILE))  # fmt: skip
    reg.publish(model="support-bot", version="1.0.0")
    reg.promote(model="support-bot", version="1.0.0", stage="staging")
    reg.observe(model="support-bot", version="1.0.0", document=parse_document(BOT_OBSERVATION),
                reason="Production monitor, week 12")  # fmt: skip

    reg.create_model(name="demand-forecast", risk_tier="low", owner="ops",
                     description="Weekly demand per store")  # fmt: skip
    reg.register(model="demand-forecast", path=_folder(root, "df1", b"d1" * 500),
                 version="0.1.0",
                 profile=parse_document("evaluations: [{name: mape, value: 0.08}]"))  # fmt: skip
    reg.publish(model="demand-forecast", version="0.1.0")
    reg.register(model="demand-forecast", path=_folder(root, "df2", b"d2" * 500),
                 version="0.2.0", parent="0.1.0", change="minor", datasets=[("train", str(train2))],
                 profile=parse_document("evaluations: [{name: mape, value: 0.07}]"))  # fmt: skip
    reg.publish(model="demand-forecast", version="0.2.0")
    for number, stage in (("0.1.0", "staging"), ("0.1.0", "production"),
                          ("0.2.0", "staging"), ("0.2.0", "production")):  # fmt: skip
        reg.promote(model="demand-forecast", version=number, stage=stage)
    reg.rollback(model="demand-forecast", stage="production",
                 reason="Forecast error doubled for stores opened in 2026")  # fmt: skip

    admin, _ = reg.create_token(user="alice", label="web tests")
    approver, info = reg.create_token(user="bob", label="web tests")
    viewer, _ = reg.create_token(user="carol", label="web tests")
    reg.checkpoint(sign=True)  # so every entry so far has an inclusion proof
    return Seeded(admin, approver, info.token_id, viewer)
