// The splitter's state machine, one byte at a time: outside a frame it looks for a start-of-image; inside, it
// walks the marker segments by their lengths and the entropy-coded data by its byte stuffing (0xFF 0x00).
#include "edge/mjpeg_splitter.hpp"

#include <algorithm>
#include <utility>

namespace edgeqc {

namespace {

constexpr unsigned char kStartOfImage = 0xD8, kEndOfImage = 0xD9, kStartOfScan = 0xDA;

// Markers without a length field: the restart markers inside entropy-coded data, and TEM.
bool is_standalone(unsigned char code) { return (code >= 0xD0 && code <= 0xD7) || code == 0x01; }

}  // namespace

MjpegSplitter::MjpegSplitter(std::size_t max_frame_bytes) : max_frame_bytes_(std::max<std::size_t>(max_frame_bytes, 4)) {}

void MjpegSplitter::start_frame() {
    frame_.assign({0xFF, kStartOfImage});
    state_ = State::Marker;
}

void MjpegSplitter::drop_frame(std::uint64_t& counter) {
    ++counter;
    frame_.clear();
    state_ = State::Seek;
    previous_was_ff_ = false;
}

void MjpegSplitter::end_segment() {
    state_ = segment_is_scan_ ? State::Scan : State::Marker;
    segment_is_scan_ = false;
}

void MjpegSplitter::on_marker(unsigned char code, const FrameSink& sink) {
    if (code == 0xFF) {  // fill byte before a marker code
        state_ = State::MarkerCode;
    } else if (code == kStartOfImage) {  // the frame in progress never ended: this marker starts the next one
        ++counts_.truncated_frames;
        start_frame();
    } else if (code == kEndOfImage) {
        ++counts_.frames;
        std::vector<unsigned char> frame = std::move(frame_);
        frame_.clear();
        state_ = State::Seek;
        previous_was_ff_ = false;
        sink(std::move(frame));
    } else if (is_standalone(code)) {
        state_ = State::Marker;
    } else if (code == 0x00) {  // a stuffed zero where a marker code must be
        drop_frame(counts_.malformed_frames);
    } else {
        segment_is_scan_ = code == kStartOfScan;
        state_ = State::LengthHigh;
    }
}

void MjpegSplitter::feed(const unsigned char* bytes, std::size_t size, const FrameSink& sink) {
    for (std::size_t i = 0; i < size; ++i) {
        const unsigned char byte = bytes[i];
        if (state_ == State::Seek) {
            if (previous_was_ff_ && byte == kStartOfImage) {
                --counts_.skipped_bytes;  // its 0xFF was counted as skipped a byte ago
                start_frame();
                previous_was_ff_ = false;
            } else {
                ++counts_.skipped_bytes;
                previous_was_ff_ = byte == 0xFF;
            }
            continue;
        }
        if (frame_.size() == max_frame_bytes_) {
            drop_frame(counts_.oversized_frames);
            ++counts_.skipped_bytes;
            previous_was_ff_ = byte == 0xFF;
            continue;
        }
        frame_.push_back(byte);
        switch (state_) {
            case State::Marker:
                if (byte == 0xFF) state_ = State::MarkerCode;
                else drop_frame(counts_.malformed_frames);
                break;
            case State::MarkerCode: on_marker(byte, sink); break;
            case State::LengthHigh:
                segment_left_ = static_cast<std::size_t>(byte) << 8;
                state_ = State::LengthLow;
                break;
            case State::LengthLow:
                segment_left_ |= byte;
                if (segment_left_ < 2) {  // the length counts its own two bytes
                    drop_frame(counts_.malformed_frames);
                    break;
                }
                segment_left_ -= 2;
                if (segment_left_ == 0) end_segment();
                else state_ = State::Segment;
                break;
            case State::Segment:
                if (--segment_left_ == 0) end_segment();
                break;
            case State::Scan:
                if (byte == 0xFF) state_ = State::ScanMarker;
                break;
            case State::ScanMarker:
                if (byte == 0x00 || (byte >= 0xD0 && byte <= 0xD7)) state_ = State::Scan;  // stuffing, restart marker
                else if (byte != 0xFF) on_marker(byte, sink);
                break;
            case State::Seek: break;  // handled above
        }
    }
}

void MjpegSplitter::finish() {
    if (state_ != State::Seek) drop_frame(counts_.truncated_frames);
}

}  // namespace edgeqc
