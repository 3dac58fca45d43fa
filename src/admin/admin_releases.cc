// Config releases (ADR 0014): an apply with ?rollout=true compiles the candidate, serves it to a
// growing share of requests and commits it only once every step held the guard.
#include <spdlog/spdlog.h>

#include <random>

#include "admin/admin_api.h"
#include "admin/admin_reply.h"
#include "observability/metrics.h"

namespace portico::admin {

using nlohmann::json;
using server::ReleaseController;

namespace {

constexpr std::size_t kReleasesKept = 20;

server::SideFigures figuresOf(const observability::ReleaseTotals& t) {
  return {t.requests, t.errors_5xx, t.quantileMs(0.99)};
}

json figuresJson(const server::SideFigures& f) {
  return {{"requests", f.requests}, {"errors_5xx", f.errors_5xx}, {"p99_ms", f.p99_ms}};
}

// Unique across nodes without asking anyone: the stable revision and 48 random bits.
std::string newReleaseId(std::uint64_t base) {
  std::random_device device;
  char id[48];
  std::snprintf(id, sizeof id, "r%llu-%04x%08x", static_cast<unsigned long long>(base),
                device() & 0xffff, device());
  return id;
}

}  // namespace

const ReleaseRecord* AdminApi::runningRelease() const {
  for (auto it = releases_.rbegin(); it != releases_.rend(); ++it)
    if (it->progressing()) return &*it;
  return nullptr;
}

ReleaseRecord* AdminApi::findRelease(const std::string& id) {
  for (auto& r : releases_)
    if (r.id == id) return &r;
  return nullptr;
}

void AdminApi::keepRelease(ReleaseRecord record) {
  releases_.push_back(std::move(record));
  for (auto it = releases_.begin(); releases_.size() > kReleasesKept && it != releases_.end();) {
    if (it->progressing()) {
      ++it;
    } else {
      it = releases_.erase(it);
    }
  }
}

bool AdminApi::shareRelease(ReleaseRecord& record) {
  if (!store_.sharesReleases()) return true;
  auto written = store_.putRelease(record.id, record.toJson(), record.mod_revision);
  if (!written) {
    spdlog::warn("release {}: the store did not take its state ({}): trying again", record.id,
                 written.error().message);
    return false;
  }
  record.mod_revision = *written;
  return true;
}

AdminResponse AdminApi::startRelease(std::vector<store::Change> changes, std::uint64_t base,
                                     std::shared_ptr<const void> prepared, json body) {
  if (!hooks_.serve_candidate || !hooks_.release_totals || !hooks_.steady_now)
    return failure(501, "this server does not run releases");
  ReleaseRecord r;
  r.id = newReleaseId(base);
  r.node = self().id;
  r.actor = actor_;
  r.created_at = r.updated_at = hooks_.now();
  r.base_revision = base;
  r.changes = std::move(changes);
  r.percent = rollout_.steps.front();
  if (!shareRelease(r)) return failure(503, "the store did not take the release: try again");
  running_.emplace(Running{r.id,
                           ReleaseController(rollout_, hooks_.steady_now()),
                           std::move(prepared),
                           hooks_.release_totals(),
                           true,
                           false,
                           {},
                           {}});
  hooks_.serve_candidate(running_->prepared, r.percent);
  spdlog::info("release {}: {} change(s) on {}% of requests", r.id, r.changes.size(), r.percent);
  if (body.is_null()) body = json::object();
  body["release"] = r.id;
  body["state"] = r.state;
  body["percent"] = r.percent;
  auto answered = answer(202, body);
  answered.headers.emplace_back("Location", "/admin/v1/releases/" + r.id);
  keepRelease(std::move(r));
  return answered;
}

void AdminApi::endRelease(const std::string& state, const std::string& reason) {
  if (!running_) return;
  ReleaseRecord* record = findRelease(running_->id);
  if (record) {
    record->state = state;
    record->reason = reason;
    record->percent = state == "promoted" ? 100 : 0;
    record->updated_at = hooks_.now();
  }
  // This node stops serving the candidate at once, whatever the store says; a rollback the
  // store did not take is written again at the next tick.
  hooks_.serve_candidate(nullptr, 0);
  if (record && !shareRelease(*record)) {  // written again at the next tick
    running_->unshared = true;
    running_->prepared.reset();
    return;
  }
  if (state == "rolled_back")
    spdlog::warn("release {} rolled back: {}", running_->id, reason);
  else
    spdlog::info("release {} {}", running_->id, state);
  running_.reset();
}

void AdminApi::tickRelease() {
  if (!running_) return;
  Running& run = *running_;
  ReleaseRecord* record = findRelease(run.id);
  if (!record) {
    endRelease("rolled_back", "release record lost");
    return;
  }
  if (run.unshared) {  // etcd did not take the end of the release: write it again
    if (shareRelease(*record)) running_.reset();
    return;
  }
  const auto now = hooks_.steady_now();
  const bool due = run.controller.due(now);
  const auto totals = hooks_.release_totals();
  auto stable =
      figuresOf(totals[observability::kStableSide].since(run.baseline[observability::kStableSide]));
  const auto candidate = figuresOf(
      totals[observability::kCandidateSide].since(run.baseline[observability::kCandidateSide]));
  if (!run.driver && due && now - run.driver_checked >= rollout_.interval) {
    // A follower also ends a release whose driving node is gone (its lease expired): nobody
    // would move it on, and writes are refused while it runs. Asked once per interval.
    run.driver_checked = now;
    if (auto nodes = store_.nodes()) {
      const bool alive = std::any_of(nodes->begin(), nodes->end(), [&](const store::NodeInfo& n) {
        return n.id == record->node;
      });
      if (!alive) {
        endRelease("rolled_back", "node " + record->node + " that drove the release is gone");
        return;
      }
    }
  }
  if (candidate.requests < rollout_.min_requests) return;  // too few to judge: the step goes on
  bool earlier_stable = false;
  if (stable.requests >= rollout_.min_requests) {
    run.reference = stable;
  } else if (run.reference.requests > 0) {
    stable = run.reference;
    earlier_stable = true;
  }
  const int at = record->percent;
  ReleaseController::State state;
  if (!due) {  // every tick: a candidate that already does worse goes now
    state = run.controller.early(stable, candidate, at);
    if (state != ReleaseController::State::RolledBack) return;
  } else {
    state = run.driver ? run.controller.judge(stable, candidate, now)
                       : run.controller.check(stable, candidate, at, now);
  }
  run.baseline = totals;
  json interval = {{"percent", at},
                   {"node", self().id},
                   {"stable", figuresJson(stable)},
                   {"candidate", figuresJson(candidate)}};
  if (earlier_stable) interval["stable_from"] = "an earlier interval";
  if (state == ReleaseController::State::RolledBack) {
    interval["decision"] = "rolled_back";
    record->intervals.push_back(std::move(interval));
    endRelease("rolled_back", run.controller.reason() + " (judged on " + self().id + ")");
    return;
  }
  if (!run.driver) return;  // held: the driver records the steps
  if (state == ReleaseController::State::Promoted) {
    interval["decision"] = "promoted";
    record->intervals.push_back(std::move(interval));
    // Committed as any write (compiled again from the entities now served, compared in the
    // store against the revisions the release was based on).
    AdminRequest promotion{"POST", "/admin/v1/releases/" + run.id + "/promote", "", "", "", {}, ""};
    attempt_ = {};
    const AdminResponse done = commit(record->changes, 200, json::object());
    audit(promotion, "release " + run.id, done.status);
    if (done.status >= 300) {
      endRelease("rolled_back", "promotion refused: " + done.body);
      return;
    }
    record->revision = entities_.revision;
    endRelease("promoted", "");
    return;
  }
  interval["decision"] = "next step";
  record->intervals.push_back(std::move(interval));
  record->percent = run.controller.percent();
  record->updated_at = hooks_.now();
  hooks_.serve_candidate(run.prepared, record->percent);
  spdlog::info("release {}: {}% of requests on the candidate", run.id, record->percent);
  (void)shareRelease(*record);  // followers take the share from the store
}

void AdminApi::followRelease(const store::ReleaseEvent& event) {
  auto incoming = ReleaseRecord::fromJson(event.value);
  if (!incoming) return;
  incoming->mod_revision = event.mod_revision;
  ReleaseRecord* have = findRelease(incoming->id);
  if (have && have->mod_revision >= incoming->mod_revision) return;  // this node's own write
  if (have && running_ && running_->id == have->id && running_->unshared) {
    have->mod_revision = incoming->mod_revision;  // the end is written again over it
    return;
  }
  if (have) {
    *have = std::move(*incoming);
  } else {
    keepRelease(std::move(*incoming));
    have = &releases_.back();
  }
  const bool ours = running_ && running_->id == have->id;
  if (!have->progressing()) {
    if (ours) {
      hooks_.serve_candidate(nullptr, 0);
      running_.reset();
      spdlog::info("release {} {} (by node {})", have->id, have->state, have->node);
    }
    return;
  }
  if (ours) {
    if (!running_->driver) hooks_.serve_candidate(running_->prepared, have->percent);
    return;
  }
  if (running_ || !hooks_.serve_candidate || !hooks_.release_totals || !hooks_.steady_now) return;
  // Another node's new release: this node compiles the candidate from its own entities.
  const std::string id = have->id;
  const auto changes = have->changes;
  store::EntitySet::Undo undo = entities_.apply(changes, entities_.revision + 1, hooks_.now());
  std::shared_ptr<const void> prepared;
  const auto errors = hooks_.compile(entities_, changes, prepared);
  entities_.revert(std::move(undo));
  running_.emplace(Running{id,
                           ReleaseController(rollout_, hooks_.steady_now()),
                           prepared,
                           hooks_.release_totals(),
                           false,
                           false,
                           {},
                           {}});
  if (!errors.empty()) {  // like a refused config: this node cannot serve it, so nobody does
    endRelease("rolled_back", "node " + self().id + " refused the candidate: " +
                                  errors.front().path + ": " + errors.front().message);
    return;
  }
  hooks_.serve_candidate(prepared, have->percent);
  spdlog::info("release {} (by node {}): {}% of requests on the candidate", id, have->node,
               have->percent);
}

void AdminApi::joinReleases() {
  if (!store_.sharesReleases()) return;
  auto shared = store_.releases();
  if (!shared) {
    spdlog::warn("store: releases not read ({}): joined when their next change arrives",
                 shared.error().message);
    return;
  }
  for (auto& event : *shared) {
    auto record = ReleaseRecord::fromJson(event.value);
    if (!record) continue;
    if (!record->progressing()) {  // the history, for GET /admin/v1/releases
      record->mod_revision = event.mod_revision;
      keepRelease(std::move(*record));
      continue;
    }
    if (record->node != self().id) {
      followRelease(event);
      continue;
    }
    ReleaseRecord ended = *record;
    ended.mod_revision = event.mod_revision;
    ended.state = "rolled_back";
    ended.reason = "node " + ended.node + " restarted during the release";
    ended.percent = 0;
    ended.updated_at = hooks_.now();
    if (shareRelease(ended)) keepRelease(std::move(ended));
  }
}

void AdminApi::appendReleaseMetrics(std::string& out) const {
  if (releases_.empty() || !hooks_.release_totals) return;
  const auto totals = hooks_.release_totals();
  const ReleaseRecord* running = runningRelease();
  const std::string stable = "config_revision=\"" + std::to_string(entities_.revision) + "\"";
  const std::string candidate =
      "config_revision=\"" + observability::escapeLabel(running ? running->id : "") + "\"";
  const std::string sides[] = {"side=\"stable\"," + stable, "side=\"candidate\"," + candidate};
  struct Family {
    const char* name;
    const char* help;
    std::uint64_t observability::ReleaseTotals::*count;
  };
  for (const Family& f : {Family{"portico_release_requests_total",
                                 "Requests answered on each side of config releases (ADR 0014).",
                                 &observability::ReleaseTotals::requests},
                          Family{"portico_release_5xx_total",
                                 "5xx answers (or none) on each side of config releases.",
                                 &observability::ReleaseTotals::errors_5xx}}) {
    observability::family(out, f.name, "counter", f.help);
    for (std::size_t i = 0; i < 2; ++i)
      observability::line(out, f.name, sides[i], static_cast<double>(totals[i].*f.count));
  }
  observability::family(out, "portico_release_candidate_percent", "gauge",
                        "Share of requests on the running release's candidate (0: none runs).");
  observability::line(out, "portico_release_candidate_percent", candidate,
                      running ? running->percent : 0);
}

AdminResponse AdminApi::releases(const std::vector<std::string>& parts,
                                 const AdminRequest& request) {
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (parts.size() == 1) {
    if (!read) return notAllowed("GET, HEAD");
    json data = json::array();
    for (auto it = releases_.rbegin(); it != releases_.rend(); ++it) data.push_back(it->toJson());
    return answer(200, {{"data", std::move(data)}});
  }
  ReleaseRecord* record = findRelease(parts[1]);
  if (!record || parts.size() > 3) return failure(404, "no release " + parts[1]);
  if (parts.size() == 2) {
    if (!read) return notAllowed("GET, HEAD");
    return answer(200, record->toJson());
  }
  if (parts[2] != "rollback") return failure(404, "not found: " + request.path);
  if (request.method != "POST") return notAllowed("POST");
  if (!record->progressing())
    return failure(409, "release " + record->id + " is " + record->state + " already");
  const std::string id = record->id;
  if (running_ && running_->id == id) {
    endRelease("rolled_back", "rolled back by " + actor_);
  } else {  // runs elsewhere (its driver is gone, or this node could not follow it)
    ReleaseRecord ended = *record;
    ended.state = "rolled_back";
    ended.reason = "rolled back by " + actor_;
    ended.percent = 0;
    ended.updated_at = hooks_.now();
    if (!shareRelease(ended)) return failure(503, "the store did not take the rollback");
    *record = std::move(ended);
  }
  return answer(200, findRelease(id)->toJson());
}

}  // namespace portico::admin
