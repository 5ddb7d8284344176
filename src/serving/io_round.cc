#include "serving/io_round.h"

#include <utility>

namespace slipway {
namespace {

thread_local const IoRound::Hook* current_hook = nullptr;

}  // namespace

bool IoRound::Active() { return current_hook != nullptr; }

void IoRound::Defer(std::function<void()> work) {
  (*current_hook)(std::move(work));
}

IoRound::Scope::Scope(Hook hook)
    : hook_(std::move(hook)), previous_(current_hook) {
  current_hook = &hook_;
}

IoRound::Scope::~Scope() { current_hook = previous_; }

}  // namespace slipway
