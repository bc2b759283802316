// Splits a byte stream of concatenated JPEG images (MJPEG as `rpicam-vid --codec mjpeg -o -` and `ffmpeg -f mjpeg -`
// write it) into whole frames, following the JPEG marker structure so that an embedded EXIF thumbnail or a 0xFFD9
// inside a segment cannot end a frame early. Garbage between frames, frames cut short and frames that grow beyond a
// bound are skipped and counted; memory never exceeds the bound. A frame cut inside its scan data (nearly all of a
// frame's bytes) ends at the next start-of-image; one cut inside its header segments takes the next frame with it,
// since segment lengths are trusted (that is what keeps EXIF thumbnails whole).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace edgeqc {

struct MjpegCounts {
    std::uint64_t frames = 0;             // complete frames passed on
    std::uint64_t skipped_bytes = 0;      // bytes outside any frame (garbage between frames)
    std::uint64_t truncated_frames = 0;   // frames cut off by a new start-of-image or the end of the stream
    std::uint64_t malformed_frames = 0;   // frames whose marker structure broke (a byte where a marker must be)
    std::uint64_t oversized_frames = 0;   // frames dropped for growing beyond the size bound
};

class MjpegSplitter {
public:
    using FrameSink = std::function<void(std::vector<unsigned char>&& frame)>;

    explicit MjpegSplitter(std::size_t max_frame_bytes = std::size_t{16} << 20);

    // Consumes bytes; each frame completed by them goes to sink, in stream order.
    void feed(const unsigned char* bytes, std::size_t size, const FrameSink& sink);
    // The stream ended: a frame still in progress is counted as truncated.
    void finish();

    const MjpegCounts& counts() const { return counts_; }

private:
    enum class State { Seek, Marker, MarkerCode, LengthHigh, LengthLow, Segment, Scan, ScanMarker };

    void start_frame();
    void drop_frame(std::uint64_t& counter);
    void end_segment();
    void on_marker(unsigned char code, const FrameSink& sink);

    std::size_t max_frame_bytes_;
    State state_ = State::Seek;
    bool previous_was_ff_ = false;  // Seek: the last byte was 0xFF (a start-of-image may follow)
    bool segment_is_scan_ = false;  // the segment being skipped is a start-of-scan header: entropy data follows
    std::size_t segment_left_ = 0;
    std::vector<unsigned char> frame_;
    MjpegCounts counts_;
};

}  // namespace edgeqc
