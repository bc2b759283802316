// A bounded first-in first-out queue between two threads: the producer waits while it is full (back-pressure on
// the camera instead of unbounded memory), the consumer takes micro-batches: up to n items, waiting at most max_wait
// after the first for the rest.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace edgeqc {

template <class T>
class BoundedQueue {
public:
    explicit BoundedQueue(std::size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    void push(T item) {
        std::unique_lock lock(mutex_);
        not_full_.wait(lock, [&] { return items_.size() < capacity_; });
        items_.push_back(std::move(item));
        not_empty_.notify_one();
    }

    // No more items will come; pop_batch returns false once the rest is taken.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        not_empty_.notify_all();
    }

    // Replaces batch with 1..n items, oldest first; false when the queue is closed and empty.
    bool pop_batch(std::vector<T>& batch, std::size_t n, std::chrono::microseconds max_wait) {
        batch.clear();
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
        if (items_.empty()) return false;
        const auto deadline = std::chrono::steady_clock::now() + max_wait;
        while (true) {
            while (!items_.empty() && batch.size() < n) {
                batch.push_back(std::move(items_.front()));
                items_.pop_front();
            }
            not_full_.notify_all();
            if (batch.size() == n || closed_) break;
            if (!not_empty_.wait_until(lock, deadline, [&] { return !items_.empty() || closed_; })) break;
        }
        return true;
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }

private:
    std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable not_empty_, not_full_;
    std::deque<T> items_;
    bool closed_ = false;
};

}  // namespace edgeqc
