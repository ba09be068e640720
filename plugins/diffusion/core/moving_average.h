// MovingAverage: an exponentially weighted moving average for timings that
// are reported to users (inference-ms). The first sample seeds the average so
// that the reported value is meaningful from the first frame on.
#pragma once

namespace mirage {

class MovingAverage {
 public:
  explicit MovingAverage(double weight = 0.1) : weight_(weight) {}

  void add(double sample) {
    value_ = count_ == 0 ? sample : value_ + weight_ * (sample - value_);
    ++count_;
  }
  double value() const { return value_; }
  unsigned long long count() const { return count_; }
  void reset() { value_ = 0; count_ = 0; }

 private:
  double weight_;
  double value_ = 0;
  unsigned long long count_ = 0;
};

}  // namespace mirage
