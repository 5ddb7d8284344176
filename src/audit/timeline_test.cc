#include "audit/timeline.h"

#include <string>

#include "gtest/gtest.h"

namespace slipway {
namespace {

AuditRecord Record(const std::string& action, const std::string& actor,
                   const std::string& object, const std::string& before,
                   const std::string& after) {
  AuditRecord r;
  r.seq = 7;
  r.at = 1'764'248'317'000'000;
  r.actor = actor;
  r.action = action;
  r.app = "churn";
  r.object = object;
  r.before_json = before;
  r.after_json = after;
  return r;
}

std::string Summary(const std::string& action, const std::string& actor,
                    const std::string& object, const std::string& after,
                    const std::string& before = "null") {
  return ToTimelineEntry(Record(action, actor, object, before, after)).summary;
}

TEST(TimelineTest, EachEventCarriesItsNumbers) {
  EXPECT_EQ(Summary("app.apply", "cli:ada", "app churn",
                    R"({"revision": 2, "spec_sha256": "ab"})"),
            "spec revision 2 applied by cli:ada");
  EXPECT_EQ(Summary("run.start",
                    "event kpi_decay by monitor (alert accuracy-low)",
                    "run run-01", R"({"pipeline": "train", "state": "queued"})"),
            "train run run-01 started by event kpi_decay by monitor (alert "
            "accuracy-low)");
  EXPECT_EQ(Summary("run.finish", "run run-01", "run run-01",
                    R"({"pipeline": "train", "state": "failed",
                        "reason": "step train: out of memory"})"),
            "train run run-01 failed: step train: out of memory");
  EXPECT_EQ(Summary("model.register", "run run-01", "model churn v3",
                    R"({"metrics": {"accuracy": 0.763333, "auc": 0.83958,
                                    "rows": 600}})"),
            "v3 registered by run run-01: accuracy=0.7633 auc=0.8396 on 600 "
            "test rows");
  EXPECT_EQ(Summary("model.evaluate", "run run-02", "model churn v4",
                    R"j({"champion": 3, "challenger": 4, "decision": "promote",
                        "reason": "auc gain 0.021 (95% CI 0.008 to 0.034)"})j"),
            "v4 beats champion v3: auc gain 0.021 (95% CI 0.008 to 0.034)");
  EXPECT_EQ(Summary("model.evaluate", "run run-03", "model churn v5",
                    R"({"champion": 4, "challenger": 5,
                        "decision": "keep_champion", "reason": "worse"})"),
            "v5 discarded, champion v4 kept: worse");
  EXPECT_EQ(Summary("alias.move", "cli:ada (approval 2)", "alias churn/champion",
                    R"({"champion": 3})", R"({"champion": 2})"),
            "champion -> v3 (was v2) by cli:ada (approval 2)");
  EXPECT_EQ(Summary("alias.move", "run run-01", "alias churn/champion",
                    R"({"champion": 1})", R"({"champion": null})"),
            "champion -> v1 by run run-01");
  EXPECT_EQ(Summary("alert.fire", "monitor", "alert accuracy-low",
                    R"({"rule": "accuracy-low", "metric": "kpi.accuracy",
                        "value": 0.4812, "comparison": "below",
                        "threshold": 0.65, "fire": "kpi_decay"})"),
            "alert accuracy-low firing: kpi.accuracy = 0.4812 (below 0.65), "
            "fires kpi_decay");
  EXPECT_EQ(Summary("alert.resolve", "monitor", "alert drift:income",
                    R"({"rule": "drift:income", "metric": "drift.income.drift",
                        "value": 0, "comparison": "above", "threshold": 0.5,
                        "fire": "drift"})"),
            "alert drift:income resolved: drift.income.drift = 0 (above 0.5)");
  EXPECT_EQ(Summary("approval.reject", "cli:ada", "approval 4",
                    R"({"kind": "promote", "decision_comment": "AUC too low"})"),
            "approval 4 (promote) rejected by cli:ada: AUC too low");
  EXPECT_EQ(Summary("approval.expire", "expiry", "approval 5",
                    R"({"kind": "apply"})"),
            "approval 5 (apply) expired");
}

TEST(TimelineTest, MissingFieldsAndUnknownActionsStillRead) {
  EXPECT_EQ(Summary("model.register", "import", "model churn v2", "not json"),
            "v2 registered by import");
  EXPECT_EQ(Summary("token.create", "server", "token tok-1", "{}"),
            "token.create token tok-1 by server");
  const TimelineEntry entry = ToTimelineEntry(
      Record("app.apply", "cli:ada", "app churn", "null", R"({"revision":1})"));
  const nlohmann::json json = entry.ToJson();
  EXPECT_EQ(json["seq"], 7);
  EXPECT_EQ(json["at"], "2025-11-27T12:58:37.000Z");
  EXPECT_EQ(json["action"], "app.apply");
  EXPECT_EQ(json["summary"], "spec revision 1 applied by cli:ada");
}

}  // namespace
}  // namespace slipway
