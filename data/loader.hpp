// Batches of preprocessed (and, for training, augmented) images, produced by one background thread ahead of
// the training loop. Deliberately no multi-worker decoding: one worker keeps up once the cache is warm.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.hpp"
#include "data/dataset.hpp"
#include "data/preprocess.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

struct Batch {
    Tensor images;                     // N x C x H x W, normalised
    std::vector<int> labels;           // N
    std::vector<std::size_t> indices;  // N, into the loader's image list
};

struct LoaderOptions {
    int batch_size = 32;
    bool shuffle = true;
    std::uint64_t seed = 0;
    bool strict = false;  // a corrupt image is an Error instead of a warning and a skip
    int prefetch_batches = 3;
    bool oversample = false;  // bring every class up to the largest one's count each epoch (epoch_order)
    AugmentOptions augment;   // applied to each sample after the cache, seeded per (seed, epoch, position)
    // Told of each corrupt image that is skipped, once ("skipping image 'a.png': ..."), from the loader's worker
    // thread; empty: skipped silently (a second loader over images another already reports).
    std::function<void(const std::string&)> warn;
};

class BatchLoader {
public:
    BatchLoader(std::vector<LabelledImage> images, InputFormat format, LoaderOptions options);
    ~BatchLoader();  // stops and joins the worker, even in the middle of an epoch
    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    // Abandons whatever is left of the previous epoch. The order is epoch_order(labels, shuffle, oversample,
    // seed, epoch).
    void start_epoch(int epoch);
    // False once the epoch is exhausted; only the last batch may be smaller than batch_size.
    // In strict mode rethrows the worker's decode Error here, in the caller's thread.
    bool next(Batch& out);

    std::size_t size() const { return images_.size(); }
    std::size_t epoch_length() const { return epoch_length_; }  // images per epoch (more with oversampling)
    std::size_t skipped() const { return skipped_.load(); }  // distinct images skipped as corrupt so far
    const std::vector<LabelledImage>& images() const { return images_; }

private:
    void worker_loop();
    void fill_epoch(const std::vector<std::size_t>& order, int epoch, std::uint64_t generation);
    void fill_batches(const std::vector<std::size_t>& order, int epoch, std::uint64_t generation);
    bool cancelled(std::uint64_t generation) const;
    bool publish(Batch batch, std::uint64_t generation);
    void finish_epoch(std::uint64_t generation, std::exception_ptr error);
    void produce_sample(std::size_t index, int epoch, std::size_t position, float* out);
    const std::vector<float>& preprocessed_sample(std::size_t index);
    void skip_corrupt(std::size_t index, const std::string& message);

    const std::vector<LabelledImage> images_;
    const InputFormat format_;
    const LoaderOptions options_;
    const std::size_t sample_floats_;
    const std::vector<int> labels_;
    const std::size_t epoch_length_;

    // Touched only by the worker thread, so they need no lock.
    std::vector<std::vector<float>> cache_;  // preprocessed samples; empty = not cached yet
    bool use_cache_;
    std::vector<bool> known_corrupt_;
    std::vector<float> scratch_;  // the sample when the cache is off
    std::vector<float> augment_scratch_;

    std::atomic<std::size_t> skipped_{0};

    // Shared between the worker and the consumer, guarded by mutex_. generation_ and stop_ are also
    // read without the lock between samples, so a cancelled epoch stops promptly.
    std::mutex mutex_;
    std::condition_variable worker_wake_;
    std::condition_variable batch_ready_;
    std::atomic<std::uint64_t> generation_{0};  // incremented by each start_epoch; 0 = none started
    std::atomic<bool> stop_{false};
    std::vector<std::size_t> order_;
    int epoch_ = 0;
    std::deque<Batch> queue_;
    bool epoch_finished_ = false;
    std::exception_ptr error_;

    std::thread worker_;  // last, so it starts after everything it uses exists
};

}  // namespace edgeqc
