// The prefetching batch loader: a bounded queue between one decode/preprocess worker and the consumer.
// Epochs are numbered by a generation counter so that start_epoch can abandon an unfinished epoch.
#include "data/loader.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/error.hpp"
#include "data/sampling.hpp"
#include "engine/rng.hpp"

namespace edgeqc {

namespace {

// Above this the preprocessed set is not kept in memory and every epoch decodes from disk again.
constexpr std::size_t kMaxCacheBytes = std::size_t{2} << 30;

const InputFormat& validated(const InputFormat& format) {
    validate_input_format(format);
    return format;
}

std::vector<int> labels_of(const std::vector<LabelledImage>& images) {
    std::vector<int> labels;
    for (const LabelledImage& image : images) labels.push_back(image.label);
    return labels;
}

const LoaderOptions& validated(const LoaderOptions& options) {
    validate_augment_options(options.augment);
    if (options.batch_size < 1) {
        throw Error("the batch size must be at least 1, but is " + std::to_string(options.batch_size) + ".");
    }
    if (options.prefetch_batches < 1) {
        throw Error("the loader must prefetch at least 1 batch, but is set to " +
                    std::to_string(options.prefetch_batches) + ".");
    }
    return options;
}

}  // namespace

BatchLoader::BatchLoader(std::vector<LabelledImage> images, InputFormat format, LoaderOptions options)
    : images_(std::move(images)),
      format_(validated(format)),
      options_(validated(options)),
      sample_floats_(input_floats(format_)),
      labels_(labels_of(images_)),
      epoch_length_(epoch_order(labels_, false, options_.oversample, 0, 0).size()),
      cache_(images_.size()),
      use_cache_(images_.size() * sample_floats_ * sizeof(float) <= kMaxCacheBytes),
      known_corrupt_(images_.size(), false),
      worker_(&BatchLoader::worker_loop, this) {}

BatchLoader::~BatchLoader() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    worker_wake_.notify_all();
    worker_.join();
}

void BatchLoader::start_epoch(int epoch) {
    if (epoch < 0) throw std::invalid_argument("BatchLoader::start_epoch: negative epoch");
    std::vector<std::size_t> order = epoch_order(labels_, options_.shuffle, options_.oversample, options_.seed, epoch);
    {
        const std::lock_guard lock(mutex_);
        order_ = std::move(order);
        epoch_ = epoch;
        queue_.clear();
        epoch_finished_ = false;
        error_ = nullptr;
        ++generation_;
    }
    worker_wake_.notify_all();
}

bool BatchLoader::next(Batch& out) {
    std::unique_lock lock(mutex_);
    if (generation_ == 0) throw std::logic_error("BatchLoader::next called before start_epoch");
    batch_ready_.wait(lock, [this] { return !queue_.empty() || epoch_finished_; });
    if (!queue_.empty()) {
        out = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        worker_wake_.notify_all();
        return true;
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return false;
}

void BatchLoader::worker_loop() {
    std::unique_lock lock(mutex_);
    std::uint64_t served = 0;
    while (true) {
        worker_wake_.wait(lock, [&] { return stop_ || generation_ != served; });
        if (stop_) return;
        served = generation_;
        const std::vector<std::size_t> order = order_;  // start_epoch may replace order_ while this epoch runs
        const int epoch = epoch_;
        lock.unlock();
        fill_epoch(order, epoch, served);
        lock.lock();
    }
}

bool BatchLoader::cancelled(std::uint64_t generation) const { return stop_ || generation_ != generation; }

void BatchLoader::fill_epoch(const std::vector<std::size_t>& order, int epoch, std::uint64_t generation) {
    try {
        fill_batches(order, epoch, generation);
    } catch (...) {  // a batch too large for memory (--batch, --size) ends the epoch with the error, not the process
        finish_epoch(generation, std::current_exception());
    }
}

void BatchLoader::fill_batches(const std::vector<std::size_t>& order, int epoch, std::uint64_t generation) {
    const auto batch_size = static_cast<std::size_t>(options_.batch_size);
    std::size_t position = 0;
    while (position < order.size()) {
        Batch batch;
        batch.images.resize({options_.batch_size, format_.channels, format_.height, format_.width});
        while (batch.labels.size() < batch_size && position < order.size()) {
            if (cancelled(generation)) return;
            const std::size_t index = order[position++];
            if (known_corrupt_[index]) continue;
            try {
                produce_sample(index, epoch, position - 1, batch.images.data() + batch.labels.size() * sample_floats_);
            } catch (const Error& error) {
                if (options_.strict) {
                    finish_epoch(generation, std::current_exception());
                    return;
                }
                skip_corrupt(index, error.what());
                continue;
            } catch (...) {
                finish_epoch(generation, std::current_exception());  // e.g. out of memory: never swallowed
                return;
            }
            batch.labels.push_back(images_[index].label);
            batch.indices.push_back(index);
        }
        if (batch.labels.empty()) break;
        batch.images.resize({static_cast<int>(batch.labels.size()), format_.channels, format_.height, format_.width});
        if (!publish(std::move(batch), generation)) return;
    }
    finish_epoch(generation, nullptr);
}

bool BatchLoader::publish(Batch batch, std::uint64_t generation) {
    std::unique_lock lock(mutex_);
    const auto capacity = static_cast<std::size_t>(options_.prefetch_batches);
    worker_wake_.wait(lock, [&] { return cancelled(generation) || queue_.size() < capacity; });
    if (cancelled(generation)) return false;
    queue_.push_back(std::move(batch));
    lock.unlock();
    batch_ready_.notify_all();
    return true;
}

void BatchLoader::finish_epoch(std::uint64_t generation, std::exception_ptr error) {
    {
        const std::lock_guard lock(mutex_);
        if (generation_ != generation) return;
        epoch_finished_ = true;
        error_ = std::move(error);
    }
    batch_ready_.notify_all();
}

// The one place a sample is produced: augmentation works on the copy, so the cache keeps the unaugmented image.
void BatchLoader::produce_sample(std::size_t index, int epoch, std::size_t position, float* out) {
    const std::vector<float>& sample = preprocessed_sample(index);
    std::copy(sample.begin(), sample.end(), out);
    if (options_.augment.enabled()) {
        Rng rng = augmentation_rng(options_.seed, epoch, position);
        augment_sample(out, format_, options_.augment, rng, augment_scratch_);
    }
}

const std::vector<float>& BatchLoader::preprocessed_sample(std::size_t index) {
    if (use_cache_ && !cache_[index].empty()) return cache_[index];
    // Filled aside and moved in, so a failure never leaves a half-written cache entry.
    std::vector<float> fresh(sample_floats_);
    preprocess_into(decode_image_file(images_[index].path), format_, fresh.data());
    std::vector<float>& slot = use_cache_ ? cache_[index] : scratch_;
    slot = std::move(fresh);
    return slot;
}

void BatchLoader::skip_corrupt(std::size_t index, const std::string& message) {
    known_corrupt_[index] = true;
    ++skipped_;
    if (!options_.warn) return;
    // Decode errors already name the file; the warning names it once.
    const std::string& path = images_[index].path;
    const std::string named = "'" + path + "': ";
    const std::size_t at = message.find(named);
    const std::string reason = at == std::string::npos ? message : message.substr(at + named.size());
    options_.warn("skipping image '" + path + "': " + reason);
}

}  // namespace edgeqc
