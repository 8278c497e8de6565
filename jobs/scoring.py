"""Identity stitching scored against the generator's ground truth (`<landing>/_truth`).

Pair precision / recall over identifiers: a pair of identifiers of one tenant is *predicted*
when `silver.identity_map` gives them the same person, and *true* when the truth does.
Identifiers the truth lists under several persons (shared devices and mailboxes, which the
K guard deliberately leaves unlinked) and identifiers absent from the map are not scored.

With `resolvable_only`, two kinds of persons are left out too, leaving the ones the rules
can resolve, where precision and recall should both be 1:
- persons who share any identifier with another person in the truth: a device shared by at
  most K users *is* linked by the SPEC's rules (§4.4), so those persons merge by design;
- persons with no `user_id` or `email` in the tenant (visitors who never identified): every
  §4.4 edge has a `user_id` or an `email` end, so two devices of such a visitor are two
  persons by the rules, though the generator knows they are one human.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.transforms.privacy import pseudonym


@dataclass(frozen=True)
class PairScore:
    tenant_id: str
    identifiers: int  # scored identifiers
    unmapped: int  # unambiguous truth identifiers missing from the map
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0


def _pairs(n: F.Column) -> F.Column:
    return (n * (n - 1) / 2).cast("long")


def score_identity(
    spark: SparkSession,
    identity_map: DataFrame,
    truth_dir: str | Path,
    pii_key: bytes,
    resolvable_only: bool = False,
) -> list[PairScore]:
    """One score per tenant of the truth, plus `*` for all tenants together."""
    truth = spark.read.schema(
        "tenant_id string, id_type string, id_value string, person string"
    ).json(str(Path(truth_dir) / "identities.jsonl"))
    value = F.when(
        F.col("id_type") == "email",
        pseudonym(pii_key, "email", F.col("tenant_id"), F.col("id_value")),
    ).otherwise(F.col("id_value"))
    keys = ["tenant_id", "id_type", "id_value"]
    truth = truth.select(*keys[:2], value.alias("id_value"), "person")
    per_identifier = truth.groupBy(*keys).agg(
        F.countDistinct("person").alias("n"), F.min("person").alias("person")
    )
    unambiguous = per_identifier.where("n = 1").drop("n")
    if resolvable_only:
        sharing = truth.join(per_identifier.where("n > 1").select(*keys), keys).select(
            "tenant_id", "person"
        )
        identified = truth.where(F.col("id_type").isin("user_id", "email")).select(
            "tenant_id", "person"
        )
        unambiguous = unambiguous.join(sharing, ["tenant_id", "person"], "left_anti").join(
            identified.distinct(), ["tenant_id", "person"], "left_semi"
        )
    tenants = [r.tenant_id for r in unambiguous.select("tenant_id").distinct().collect()]
    joined = unambiguous.join(
        identity_map.where(F.col("tenant_id").isin(tenants)).select(*keys, "person_id"),
        keys,
        "left",
    )
    scored = joined.where(F.col("person_id").isNotNull())
    cells = scored.groupBy("tenant_id", "person", "person_id").count()
    correct = cells.groupBy("tenant_id").agg(F.sum(_pairs(F.col("count"))).alias("correct"))
    true = (
        scored.groupBy("tenant_id", "person")
        .count()
        .groupBy("tenant_id")
        .agg(F.sum(_pairs(F.col("count"))).alias("true"))
    )
    predicted = (
        scored.groupBy("tenant_id", "person_id")
        .count()
        .groupBy("tenant_id")
        .agg(F.sum(_pairs(F.col("count"))).alias("predicted"))
    )
    sizes = joined.groupBy("tenant_id").agg(
        F.count("person_id").alias("identifiers"),
        F.count(F.when(F.col("person_id").isNull(), 1)).alias("unmapped"),
    )
    rows = (
        sizes.join(true, "tenant_id", "left")
        .join(predicted, "tenant_id", "left")
        .join(correct, "tenant_id", "left")
        .fillna(0)
        .orderBy("tenant_id")
        .collect()
    )
    scores = [
        PairScore(r.tenant_id, r.identifiers, r.unmapped, r.true, r.predicted, r.correct)
        for r in rows
    ]
    total = PairScore(
        "*",
        sum(s.identifiers for s in scores),
        sum(s.unmapped for s in scores),
        sum(s.true_pairs for s in scores),
        sum(s.predicted_pairs for s in scores),
        sum(s.correct_pairs for s in scores),
    )
    return [*scores, total]
