// The edge node's parts on their own: the MJPEG splitter (whole frames back, garbage, truncation, the size bound,
// random bytes), the decision rule, the SQLite spool (order, persistence, bound, a foreign file) and broker URLs.
#include <doctest/doctest.h>

#include <algorithm>

#include "data/image.hpp"
#include "edge/decision.hpp"
#include "edge/inspection.hpp"
#include "edge/mjpeg_splitter.hpp"
#include "edge/model_envelope.hpp"
#include "edge/mqtt_publisher.hpp"
#include "edge/node_command.hpp"
#include "edge/spool.hpp"
#include "edge/system_readings.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes test_jpeg(int width, int height, int channels, std::uint64_t seed) {
    Image image{width, height, channels, {}};
    Rng rng(seed);
    image.pixels.resize(static_cast<std::size_t>(width * height * channels));
    for (float& p : image.pixels) p = rng.uniform();
    return encode_jpeg(image, 80, "test frame");
}

// The frames a splitter gives for stream, fed in pieces of at most chunk bytes.
std::vector<Bytes> split(MjpegSplitter& splitter, const Bytes& stream, std::size_t chunk) {
    std::vector<Bytes> frames;
    for (std::size_t at = 0; at < stream.size(); at += chunk)
        splitter.feed(stream.data() + at, std::min(chunk, stream.size() - at),
                      [&](Bytes&& frame) { frames.push_back(std::move(frame)); });
    splitter.finish();
    return frames;
}

void append(Bytes& to, const Bytes& bytes) { to.insert(to.end(), bytes.begin(), bytes.end()); }

}  // namespace

TEST_CASE("the MJPEG splitter gives back every frame byte for byte, whatever the read sizes") {
    const std::vector<Bytes> sent = {test_jpeg(33, 17, 3, 1), test_jpeg(8, 8, 1, 2), test_jpeg(64, 48, 3, 3)};
    Bytes stream;
    for (const Bytes& frame : sent) append(stream, frame);
    for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, stream.size()}) {
        MjpegSplitter splitter;
        CHECK(split(splitter, stream, chunk) == sent);
        CHECK(splitter.counts().frames == 3);
        CHECK(splitter.counts().skipped_bytes == 0);
        CHECK(splitter.counts().truncated_frames == 0);
    }
    const Image decoded = decode_image_memory(sent[2].data(), sent[2].size(), "frame");
    CHECK(decoded.width == 64);
}

TEST_CASE("the MJPEG splitter skips and counts garbage, truncated and malformed frames") {
    const Bytes a = test_jpeg(20, 10, 3, 4), b = test_jpeg(12, 12, 1, 5);
    Bytes stream = {'x', 0xFF, 0x00, 0xFF};  // garbage, including a lone 0xFF before a start-of-image
    append(stream, a);
    append(stream, Bytes(a.begin(), a.end() - 20));  // cut off inside its scan by the next frame
    append(stream, b);
    append(stream, {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01});  // a segment length below 2: malformed
    append(stream, {0xFF, 0xD8, 0x12});                    // no marker where one must be: malformed
    append(stream, b);
    append(stream, Bytes(b.begin(), b.end() - 2));  // the stream ends inside a frame
    MjpegSplitter splitter;
    const std::vector<Bytes> frames = split(splitter, stream, 13);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0] == a);
    CHECK(frames[1] == b);
    CHECK(frames[2] == b);
    CHECK(splitter.counts().skipped_bytes == 4);
    CHECK(splitter.counts().truncated_frames == 2);
    CHECK(splitter.counts().malformed_frames == 2);
}

TEST_CASE("an end-of-image inside a segment (an EXIF thumbnail) does not end the frame") {
    const Bytes thumbnail = test_jpeg(4, 4, 1, 6);
    const Bytes frame_body = test_jpeg(16, 16, 3, 7);
    // The frame: SOI, an APP1 segment holding the thumbnail (with its own SOI ... EOI), then the rest of a JPEG.
    Bytes frame = {0xFF, 0xD8, 0xFF, 0xE1};
    const std::size_t length = thumbnail.size() + 2;
    frame.push_back(static_cast<unsigned char>(length >> 8));
    frame.push_back(static_cast<unsigned char>(length & 0xFF));
    append(frame, thumbnail);
    frame.insert(frame.end(), frame_body.begin() + 2, frame_body.end());
    MjpegSplitter splitter;
    const std::vector<Bytes> frames = split(splitter, frame, 100);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == frame);
    CHECK(decode_image_memory(frames[0].data(), frames[0].size(), "frame").width == 16);
}

TEST_CASE("a frame without an end grows no further than the bound, and the next frame still arrives") {
    const Bytes good = test_jpeg(10, 10, 3, 8);
    Bytes stream = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02};  // a scan that never ends
    stream.resize(stream.size() + 100000, 0x55);
    append(stream, good);
    MjpegSplitter splitter(4096);
    const std::vector<Bytes> frames = split(splitter, stream, 4096);
    REQUIRE(frames.size() == 1);
    CHECK(frames[0] == good);
    CHECK(splitter.counts().oversized_frames == 1);
}

TEST_CASE("random bytes never crash the splitter, and whatever it passes on is one marker-delimited frame") {
    Rng rng(11);
    const Bytes jpeg = test_jpeg(9, 9, 3, 9);
    for (int trial = 0; trial < 200; ++trial) {
        Bytes stream;
        for (int piece = 0; piece < 6; ++piece) {
            if (rng.uniform() < 0.5f) {
                Bytes mutated = jpeg;
                for (int flips = 0; flips < 3; ++flips)
                    mutated[static_cast<std::size_t>(rng.uniform() * static_cast<float>(mutated.size() - 1))] =
                        static_cast<unsigned char>(rng.uniform() * 256.0f);
                append(stream, mutated);
            } else {
                for (int k = 0; k < 50; ++k) stream.push_back(rng.uniform() < 0.3f ? 0xFF : static_cast<unsigned char>(rng.uniform() * 256.0f));
            }
        }
        MjpegSplitter splitter(2048);
        for (const Bytes& frame : split(splitter, stream, 1 + static_cast<std::size_t>(rng.uniform() * 300.0f))) {
            REQUIRE(frame.size() >= 4);
            CHECK(frame[0] == 0xFF);
            CHECK(frame[1] == 0xD8);
            CHECK(frame[frame.size() - 2] == 0xFF);
            CHECK(frame.back() == 0xD9);
            CHECK(frame.size() <= 2048);
        }
    }
}

TEST_CASE("the decision rule: p = 1 - P(normal), thresholds 0.5 and 0.8, per-class pairs, clear refusals") {
    const std::vector<std::string> classes = {"crack", "Good", "pore"};
    DecisionRule rule(classes, "", VerdictThresholds{});
    CHECK(rule.normal_class() == 1);
    Decision d = rule.decide({0.1f, 0.6f, 0.3f});
    CHECK(d.defect_probability == doctest::Approx(0.4f));
    CHECK(d.defect_class == 2);
    CHECK(d.verdict == Verdict::Normal);
    CHECK(rule.decide({0.3f, 0.5f, 0.2f}).verdict == Verdict::Reinspect);  // p = 0.5 exactly: re-inspect
    CHECK(rule.decide({0.7f, 0.2f, 0.1f}).verdict == Verdict::Defective);  // p = 0.8
    CHECK(rule.decide({0.5f, 0.21f, 0.29f}).verdict == Verdict::Reinspect);

    DecisionRule strict(classes, "Good", VerdictThresholds{}, {{"crack", parse_thresholds("0.2,0.4")}});
    CHECK(strict.decide({0.3f, 0.65f, 0.05f}).verdict == Verdict::Reinspect);  // crack most likely: its own pair
    CHECK(strict.decide({0.05f, 0.65f, 0.3f}).verdict == Verdict::Normal);     // pore: the global pair
    CHECK(strict.decide({0.45f, 0.55f, 0.0f}).verdict == Verdict::Defective);

    CHECK(std::string(verdict_name(Verdict::Reinspect)) == "re-inspect");
    CHECK_THROWS_WITH_AS(DecisionRule({"crack", "pore"}, "", {}), doctest::Contains("--normal-class"), Error);
    CHECK_THROWS_WITH_AS(DecisionRule({"ok", "normal"}, "", {}), doctest::Contains("two classes"), Error);
    CHECK_THROWS_WITH_AS(DecisionRule(classes, "fine", {}), doctest::Contains("crack, Good, pore"), Error);
    CHECK_THROWS_WITH_AS(DecisionRule(classes, "", {}, {{"Good", {}}}), doctest::Contains("normal class"), Error);
    CHECK_THROWS_WITH_AS(DecisionRule(classes, "", {}, {{"hole", {}}}), doctest::Contains("no such class"), Error);
    CHECK_THROWS_AS(parse_thresholds("0.8,0.5"), Error);
    CHECK_THROWS_AS(parse_thresholds("0.5"), Error);
    CHECK_THROWS_AS(parse_thresholds("0.5,1.5"), Error);
    CHECK_THROWS_AS(parse_thresholds("nan,0.5"), Error);
    CHECK(parse_thresholds("0,1").defective == 1.0f);
}

TEST_CASE("the spool keeps messages in order across reopening, removes acknowledged ones and drops the oldest") {
    TempFolder folder;
    {
        Spool spool(folder.str(), 5);
        CHECK(spool.last_frame() == 0);
        spool.append({{0, "t/a", "one"}, {0, "t/a", std::string("two\0bytes", 9)}}, 2);
        spool.append({{0, "t/b", "three"}}, 3);
        const std::vector<SpooledMessage> all = spool.after(0, 10);
        REQUIRE(all.size() == 3);
        CHECK(all[0].payload == "one");
        CHECK(all[1].payload == std::string("two\0bytes", 9));
        CHECK(all[2].topic == "t/b");
        CHECK(all[0].id < all[1].id);
        CHECK(spool.after(all[0].id, 1).at(0).payload == all[1].payload);
        spool.remove({all[1].id, 999});
        CHECK(spool.size() == 2);
    }
    Spool reopened(folder.str(), 5);
    CHECK(reopened.last_frame() == 3);
    CHECK(reopened.size() == 2);
    const std::int64_t last_id = reopened.after(0, 10).back().id;
    reopened.remove({reopened.after(0, 10).front().id, last_id});
    reopened.append({{0, "t", "after empty"}}, 4);
    CHECK(reopened.after(last_id, 10).size() == 1);  // ids are never reused, even once the spool was empty
    for (int i = 0; i < 7; ++i) reopened.append({{0, "t", std::to_string(i)}}, 5 + i);
    CHECK(reopened.size() == 5);
    CHECK(reopened.dropped() == 3);
    const std::vector<SpooledMessage> kept = reopened.after(0, 10);
    CHECK(kept.front().payload == "2");
    CHECK(kept.back().payload == "6");
}

TEST_CASE("a file that is not a spool database is refused with its path, never overwritten") {
    TempFolder folder;
    write_bytes(folder.file("spool.sqlite"), Bytes(4096, 'z'));
    CHECK_THROWS_WITH_AS(Spool(folder.str(), 10), doctest::Contains("spool.sqlite"), Error);
    CHECK(read_bytes(folder.file("spool.sqlite")) == Bytes(4096, 'z'));
    CHECK_THROWS_AS(Spool(folder.str(), 0), Error);
}

TEST_CASE("broker URLs: scheme, default ports, bad ports") {
    MqttSettings s;
    parse_broker_url("mqtt://broker.local", s);
    CHECK(s.host == "broker.local");
    CHECK(s.port == 1883);
    CHECK_FALSE(s.tls);
    parse_broker_url("mqtts://10.0.0.2:8884", s);
    CHECK(s.host == "10.0.0.2");
    CHECK(s.port == 8884);
    CHECK(s.tls);
    CHECK_THROWS_AS(parse_broker_url("tcp://host:1883", s), Error);
    CHECK_THROWS_AS(parse_broker_url("mqtt://host:0", s), Error);
    CHECK_THROWS_AS(parse_broker_url("mqtt://host:99999", s), Error);
    CHECK_THROWS_AS(parse_broker_url("mqtt://:1883", s), Error);
    CHECK_THROWS_AS(parse_broker_url("mqtt://host/x", s), Error);
}

TEST_CASE("node commands: pause, resume and thresholds parse; anything else is refused with its reason") {
    CHECK(parse_node_command(R"({"cmd":"pause"})").kind == NodeCommand::Kind::Pause);
    CHECK(parse_node_command(R"({"cmd":"resume","extra":1})").kind == NodeCommand::Kind::Resume);
    const NodeCommand t = parse_node_command(R"({"cmd":"thresholds","reinspect":0.25,"defective":0.75})");
    CHECK(t.kind == NodeCommand::Kind::Thresholds);
    CHECK(t.thresholds.reinspect == 0.25f);
    CHECK(t.thresholds.defective == 0.75f);
    const auto refused = [](const std::string& payload, const char* reason) {
        CAPTURE(payload);
        CHECK_THROWS_WITH_AS(parse_node_command(payload), doctest::Contains(reason), Error);
    };
    refused("pause", "not a JSON object");
    refused("[1,2]", "not a JSON object");
    refused("{\"cmd\":", "not a JSON object");
    refused(R"({"command":"pause"})", "no \"cmd\"");
    refused(R"({"cmd":7})", "no \"cmd\"");
    refused(R"({"cmd":"reboot"})", "unknown command 'reboot'");
    CHECK(parse_node_command(R"({"cmd":"reload"})").kind == NodeCommand::Kind::Reload);
    CHECK(parse_node_command(R"({"cmd":"rollback"})").kind == NodeCommand::Kind::Rollback);
    refused(R"({"cmd":"thresholds","reinspect":0.5})", "'defective' must be a number");
    refused(R"({"cmd":"thresholds","reinspect":"0.5","defective":0.8})", "'reinspect' must be a number");
    refused(R"({"cmd":"thresholds","reinspect":0.5,"defective":1.5})", "between 0 and 1");
    refused(R"({"cmd":"thresholds","reinspect":0.9,"defective":0.8})", "must not exceed");
    refused(std::string(kMaxCommandBytes + 1, ' '), "at most");
}

TEST_CASE("latency percentiles by nearest rank, and this process's memory") {
    std::vector<double> values;
    for (int i = 100; i >= 1; --i) values.push_back(i);
    CHECK(percentile(values, 0.50) == 50);
    CHECK(percentile(values, 0.95) == 95);
    CHECK(percentile(values, 0.99) == 99);
    CHECK(percentile(values, 1.0) == 100);
    CHECK(percentile(values, 0.0) == 1);
    std::vector<double> none;
    CHECK(percentile(none, 0.5) == 0);
    CHECK(resident_set_mib() > 1);
    // The kernel counts resident pages per thread and folds them in batches: the two readings may differ by a few
    // pages (24 KiB seen under AddressSanitizer), so a peak below the current size by less than 1 MiB is no error.
    const double current = resident_set_mib();
    CHECK(peak_resident_set_mib() + 1.0 >= current);
}

TEST_CASE("tiles cover the region of interest, the last row and column ending at its edge; bad areas are refused") {
    FrameLayout layout;
    CHECK(tile_areas(layout, 640, 480).size() == 1);
    layout.roi = parse_roi("10,20,300,200");
    const std::vector<Rect> whole_roi = tile_areas(layout, 640, 480);
    REQUIRE(whole_roi.size() == 1);
    CHECK(whole_roi[0].x == 10);
    CHECK(whole_roi[0].height == 200);
    parse_tiling("100x120", 0, layout);  // stride: the shorter side, 100
    const std::vector<Rect> tiles = tile_areas(layout, 640, 480);
    // Columns at 0, 100, 180 (moved back to end at 300); rows at 0, 100 (ends exactly at 200).
    REQUIRE(tiles.size() == 6);
    const int xs[] = {10, 110, 190, 10, 110, 190}, ys[] = {20, 20, 20, 120, 120, 120};
    for (std::size_t i = 0; i < tiles.size(); ++i) {
        CAPTURE(i);
        CHECK(tiles[i].x == xs[i]);
        CHECK(tiles[i].y == ys[i]);
        CHECK(tiles[i].width == 120);
        CHECK(tiles[i].height == 100);
    }
    CHECK_THROWS_WITH_AS(tile_areas(layout, 300, 480), doctest::Contains("not inside"), Error);
    FrameLayout too_big;
    parse_tiling("600x600", 50, too_big);
    CHECK_THROWS_WITH_AS(tile_areas(too_big, 640, 480), doctest::Contains("do not fit"), Error);
    CHECK_THROWS_AS(parse_roi("1,2,3"), Error);
    CHECK_THROWS_AS(parse_roi("1,2,0,4"), Error);
    CHECK_THROWS_AS(parse_roi("-1,2,3,4"), Error);
    CHECK_THROWS_AS(parse_tiling("64", 0, too_big), Error);
    CHECK_THROWS_AS(parse_tiling("4x4", 0, too_big), Error);

    Image image{5, 4, 2, std::vector<float>(40)};
    for (std::size_t i = 0; i < 40; ++i) image.pixels[i] = static_cast<float>(i);
    const Image crop = crop_image(image, 1, 2, 3, 2);
    CHECK(crop.pixels == std::vector<float>{11, 12, 13, 16, 17, 18, 31, 32, 33, 36, 37, 38});
    CHECK_THROWS_AS(crop_image(image, 3, 0, 3, 1), Error);
}

TEST_CASE("model envelopes: a sealed file opens to the same bytes; damage, a wrong size or a bad header is refused") {
    const Bytes file = {1, 2, 3, 0, 255, '\n', 7};
    const std::string sealed = seal_model_envelope(file);
    const ModelEnvelope opened = open_model_envelope(sealed);
    CHECK(opened.file == file);
    CHECK(opened.sha256.size() == 64);
    const auto refused = [](const std::string& payload, const char* reason) {
        CHECK_THROWS_WITH_AS(open_model_envelope(payload), doctest::Contains(reason), Error);
    };
    std::string damaged = sealed;
    damaged.back() ^= 1;
    refused(damaged, "checksum mismatch");
    refused(sealed.substr(0, sealed.size() - 1), "cut off");
    refused(sealed + "x", "came");
    refused("no header at all", "no header line");
    refused(std::string(kMaxEnvelopeHeader + 1, ' ') + "\n", "no header line");
    refused("[1]\nabc", "not a JSON object");
    refused(R"({"sha256":"ABC","size":3})" "\nabc", "64 lower-case hex");
    refused(R"({"sha256":")" + std::string(64, 'a') + R"(","size":-3})" "\nabc", "\"size\"");
}
