#pragma once
// SIGINT / SIGTERM during training: the handler only records the signal; the loop
// finishes the step it is in, saves a checkpoint and exits (130 / 143).
namespace hallo::trainer {

class StopSignal {
 public:
  StopSignal();   // installs the handlers
  ~StopSignal();  // restores the previous ones
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  int received() const;  // 0, SIGINT or SIGTERM
};

}  // namespace hallo::trainer
