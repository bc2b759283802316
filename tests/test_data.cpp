// Tests of data/: decode/encode, channel conversion, the reference resampler, folder scans, the split,
// the batch loader, normalisation and the synthetic dataset.
//
// How to add a data test: build the fixture files inside a TempFolder (it is removed when the test
// ends), write images with write_constant_png or plain bytes with write_bytes, and compare floats
// with the named tolerances below; expected values are worked out by hand in a comment, never taken
// from the code under test.
#include <doctest/doctest.h>

#include <stb/stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/loader.hpp"
#include "data/normalization.hpp"
#include "data/preprocess.hpp"
#include "data/synth.hpp"
#include "engine/error.hpp"
#include "engine/rng.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

constexpr float kFloatTolerance = 1e-6f;             // float arithmetic on values in [0, 1]
constexpr float kEightBitTolerance = 0.5f / 255.0f;  // a value that went through an 8-bit file

Image constant_image(int width, int height, int channels, float value) {
    return Image{width, height, channels,
                 std::vector<float>(static_cast<std::size_t>(width * height * channels), value)};
}

void write_constant_png(const std::string& path, float value, int width = 6, int height = 4) {
    write_png(path, constant_image(width, height, 1, value));
}

// A 1 x n row (or n x 1 column) image holding values.
Image row_image(const std::vector<float>& values) {
    return Image{static_cast<int>(values.size()), 1, 1, values};
}
Image column_image(const std::vector<float>& values) {
    return Image{1, static_cast<int>(values.size()), 1, values};
}

void check_pixels(const Image& image, const std::vector<float>& expected, float tolerance = kFloatTolerance) {
    REQUIRE(image.pixels.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("pixel " << i);
        CHECK(image.pixels[i] == doctest::Approx(expected[i]).epsilon(tolerance));
    }
}

// doctest's matcher takes its own string type.
doctest::Contains mentions(const std::string& text) { return doctest::Contains(text.c_str()); }

std::vector<std::string> paths_of(const std::vector<LabelledImage>& images) {
    std::vector<std::string> paths;
    for (const LabelledImage& image : images) paths.push_back(image.path);
    return paths;
}

}  // namespace

TEST_CASE("a PNG written and decoded again keeps its size, channels and 8-bit values") {
    TempFolder folder;
    for (const int channels : {1, 3}) {
        CAPTURE(channels);
        Image image{5, 3, channels, {}};
        for (std::size_t i = 0; i < 15u * static_cast<std::size_t>(channels); ++i) {
            image.pixels.push_back(static_cast<float>((i * 17) % 256) / 255.0f);
        }
        const std::string path = folder.file("round_trip_" + std::to_string(channels) + ".png");
        write_png(path, image);
        CHECK_FALSE(fs::exists(path + ".tmp"));
        const Image decoded = decode_image_file(path);
        CHECK(decoded.width == 5);
        CHECK(decoded.height == 3);
        CHECK(decoded.channels == channels);
        check_pixels(decoded, image.pixels, kEightBitTolerance);
    }
}

TEST_CASE("write_png rejects an unwritable folder and unsupported channel counts") {
    TempFolder folder;
    CHECK_THROWS_AS(write_png(folder.str() + "/missing/sub/out.png", constant_image(4, 4, 1, 0.5f)), Error);
    CHECK_THROWS_AS(write_png(folder.file("two.png"), constant_image(4, 4, 2, 0.5f)), Error);
    CHECK_THROWS_AS(write_png(folder.file("short.png"), Image{4, 4, 1, std::vector<float>(3)}), Error);
}

TEST_CASE("BMP, PGM, PPM and JPEG files decode to their pixels, planar and in [0, 1]") {
    TempFolder folder;
    const auto little_endian = [](std::vector<unsigned char>& bytes, std::uint32_t value, int size) {
        for (int i = 0; i < size; ++i) bytes.push_back(static_cast<unsigned char>(value >> (8 * i)));
    };
    // 24-bit BMP, 2 x 2: top row red, green; bottom row blue, white. Rows are stored bottom-up as B, G, R and
    // padded to 4 bytes (6 + 2).
    std::vector<unsigned char> bmp{'B', 'M'};
    little_endian(bmp, 54 + 16, 4);
    little_endian(bmp, 0, 4);
    little_endian(bmp, 54, 4);  // pixel data offset: 14-byte file header + 40-byte info header
    // Info header: its size, width, height (positive: bottom-up), planes, bits per pixel, no compression, pixel
    // bytes, 72 dpi in pixels per metre, no palette.
    const std::pair<std::uint32_t, int> info_header[] = {{40, 4}, {2, 4}, {2, 4}, {1, 2}, {24, 2}, {0, 4},
                                                         {16, 4}, {2835, 4}, {2835, 4}, {0, 4}, {0, 4}};
    for (const auto& [value, size] : info_header) little_endian(bmp, value, size);
    for (const unsigned char byte : {255, 0, 0, 255, 255, 255, 0, 0, 0, 0, 255, 0, 255, 0, 0, 0}) bmp.push_back(byte);
    write_bytes(folder.file("a.bmp"), bmp);
    const Image decoded_bmp = decode_image_file(folder.file("a.bmp"));
    CHECK(decoded_bmp.channels == 3);
    CHECK(decoded_bmp.width == 2);
    check_pixels(decoded_bmp, {1, 0, 0, 1, /* green */ 0, 1, 0, 1, /* blue */ 0, 0, 1, 1});

    const std::string pgm_header = "P5\n3 2\n255\n";
    std::vector<unsigned char> pgm(pgm_header.begin(), pgm_header.end());
    for (const unsigned char value : {0, 51, 102, 153, 204, 255}) pgm.push_back(value);
    write_bytes(folder.file("a.pgm"), pgm);
    const Image decoded_pgm = decode_image_file(folder.file("a.pgm"));
    CHECK(decoded_pgm.channels == 1);
    CHECK(decoded_pgm.width == 3);
    CHECK(decoded_pgm.height == 2);
    check_pixels(decoded_pgm, {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f});

    const std::string ppm_header = "P6\n2 1\n255\n";
    std::vector<unsigned char> ppm(ppm_header.begin(), ppm_header.end());
    for (const unsigned char value : {51, 102, 153, 204, 255, 0}) ppm.push_back(value);
    write_bytes(folder.file("a.ppm"), ppm);
    check_pixels(decode_image_file(folder.file("a.ppm")), {0.2f, 0.8f, /* green */ 0.4f, 1.0f, /* blue */ 0.6f, 0.0f});

    // JPEG is lossy: a flat grey encoded by stb_image_write at quality 100 comes back within two levels, in three
    // channels because that encoder always writes YCbCr.
    const std::vector<unsigned char> grey(16 * 8, 128);
    REQUIRE(stbi_write_jpg(folder.file("a.jpg").c_str(), 16, 8, 1, grey.data(), 100) != 0);
    const Image decoded_jpeg = decode_image_file(folder.file("a.jpg"));
    CHECK(decoded_jpeg.channels == 3);
    CHECK(decoded_jpeg.width == 16);
    CHECK(decoded_jpeg.height == 8);
    for (const float value : decoded_jpeg.pixels) CHECK(std::abs(value - 128.0f / 255.0f) <= 2.0f / 255.0f);
}

TEST_CASE("corrupt, truncated, empty and missing image files throw Error naming the file") {
    TempFolder folder;
    Rng rng(7);
    std::vector<unsigned char> noise(300);
    for (unsigned char& byte : noise) byte = static_cast<unsigned char>(rng.below(256));
    const std::string corrupt = folder.file("noise.png");
    write_bytes(corrupt, noise);

    const std::string good = folder.file("good.png");
    write_png(good, constant_image(40, 30, 3, 0.25f));
    std::vector<unsigned char> bytes = read_bytes(good);
    bytes.resize(bytes.size() / 2);
    const std::string truncated = folder.file("truncated.png");
    write_bytes(truncated, bytes);

    const std::string empty = folder.file("empty.png");
    write_bytes(empty, {});

    for (const std::string& path : {corrupt, truncated, empty, folder.str() + "/absent.png", folder.str()}) {
        CAPTURE(path);
        CHECK_THROWS_WITH_AS(decode_image_file(path), mentions(path), Error);
    }
}

namespace {

std::vector<unsigned char> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// A PNG chunk with its length and CRC.
void append_png_chunk(std::vector<unsigned char>& png, const char* type, const std::vector<unsigned char>& data) {
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<unsigned char>(data.size() >> shift));
    const std::size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    const uLong crc = crc32(0L, png.data() + start, static_cast<uInt>(png.size() - start));
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<unsigned char>(crc >> shift));
}

// A valid PNG signature and IHDR for width x height (8-bit RGBA), no pixel data.
std::vector<unsigned char> png_header(std::uint32_t width, std::uint32_t height, int bit_depth = 8) {
    std::vector<unsigned char> png{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<unsigned char> ihdr;
    for (const std::uint32_t value : {width, height})
        for (int shift = 24; shift >= 0; shift -= 8) ihdr.push_back(static_cast<unsigned char>(value >> shift));
    ihdr.insert(ihdr.end(), {static_cast<unsigned char>(bit_depth), 6, 0, 0, 0});
    append_png_chunk(png, "IHDR", ihdr);
    return png;
}

std::string decode_error(const std::vector<unsigned char>& bytes) {
    try {
        decode_image_memory(bytes.data(), bytes.size(), "x");
    } catch (const Error& e) {
        return e.what();
    }
    return "decoded";
}

}  // namespace

TEST_CASE("image decoding is strict: truncated files, bombs and foreign formats are refused from their headers") {
    // PGM/PPM: truncated pixels (stb_image decoded uninitialised memory here), numbers that would overflow, a
    // sample above the maximum, and 16-bit samples scaled to 8 bits.
    CHECK(decode_error(bytes_of("P6\n64 64\n255\n")).find("ends early (truncated)") != std::string::npos);
    CHECK(decode_error(bytes_of("P5\n99999999999 1\n255\n")).find("not a number below 10^9") != std::string::npos);
    CHECK(decode_error(bytes_of("P5 2x1 255\n\x01\x02")).find("not a number") != std::string::npos);
    CHECK(decode_error(bytes_of("P5 1 1 9 \x0a")).find("above the header's maximum") != std::string::npos);
    std::vector<unsigned char> wide = bytes_of("P5\n# two 16-bit samples\n2 1\n65535\n");
    wide.insert(wide.end(), {0xFF, 0xFF, 0x80, 0x00});
    const Image sixteen = decode_image_memory(wide.data(), wide.size(), "wide.pgm");
    CHECK(sixteen.pixels[0] == 1.0f);
    CHECK(sixteen.pixels[1] == doctest::Approx(128.0 / 255.0));
    // A decompression bomb: an image header claiming more pixels than the limit is refused before decoding.
    CHECK(decode_error(png_header(16384, 16384, 16)).find("exceeds the limit of 50000000 pixels (--max-pixels)") !=
          std::string::npos);
    CHECK(decode_error(bytes_of("P5 16000 16000 255 ")).find("--max-pixels") != std::string::npos);
    const std::vector<unsigned char> small = encode_png(constant_image(20, 20, 1, 0.5f), "small");
    set_max_image_pixels(399);
    CHECK(decode_error(small).find("(400 pixels) exceeds the limit of 399 pixels") != std::string::npos);
    set_max_image_pixels(kDefaultMaxImagePixels);
    CHECK(decode_error(small) == "decoded");
    CHECK_THROWS_AS(set_max_image_pixels(0), Error);
    // PNG through libpng: no pixels, too wide, truncated data, an empty IDAT; a PNG without IEND has all its pixels.
    CHECK(decode_error(png_header(0, 4)).find("its header gives it no pixels") != std::string::npos);
    CHECK(decode_error(png_header(100000, 100000)).find("limit of 16384 pixels per side") != std::string::npos);
    std::vector<unsigned char> empty_idat = png_header(4, 4);
    append_png_chunk(empty_idat, "IDAT", {});
    append_png_chunk(empty_idat, "IEND", {});
    CHECK(decode_error(empty_idat).find("bad PNG data") != std::string::npos);
    const std::vector<unsigned char> truncated(small.begin(), small.end() - 30);
    CHECK(decode_error(truncated).find("bad PNG data") != std::string::npos);
    const std::vector<unsigned char> no_iend(small.begin(), small.end() - 12);
    CHECK(decode_error(no_iend) == "decoded");
    // Formats other decoders would guess from the content: a TGA header (stb_image decoded 16384x16384 from 18
    // bytes), GIF, text PNM.
    std::vector<unsigned char> tga{0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0x40, 24, 0};
    CHECK(decode_error(tga).find("not a JPEG, PNG, BMP or binary PGM/PPM image") != std::string::npos);
    CHECK(decode_error(bytes_of("GIF89a....")).find("a GIF image") != std::string::npos);
    CHECK(decode_error(bytes_of("P2\n1 1\n255\n7\n")).find("text or 1-bit PNM") != std::string::npos);
    // BMP: truncated rows and RLE compression are refused.
    std::vector<unsigned char> bmp;
    REQUIRE(stbi_write_bmp_to_func([](void* context, void* data, int size) {
        auto* out = static_cast<std::vector<unsigned char>*>(context);
        out->insert(out->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
    }, &bmp, 5, 3, 3, std::vector<unsigned char>(45, 9).data()) != 0);
    CHECK(decode_image_memory(bmp.data(), bmp.size(), "a.bmp").width == 5);
    CHECK(decode_error(std::vector<unsigned char>(bmp.begin(), bmp.end() - 5)).find("ends early") != std::string::npos);
    std::vector<unsigned char> rle = bmp;
    rle[30] = 1;
    CHECK(decode_error(rle).find("compressed BMP") != std::string::npos);
    // JPEG: Huffman tables whose counts are all 0xFF (an out-of-bounds write in stb_image) are an error.
    std::vector<unsigned char> jpeg = encode_jpeg(constant_image(16, 16, 1, 0.5f), 90, "x");
    for (std::size_t i = 0; i + 20 < jpeg.size(); ++i)
        if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC4) {
            std::fill(jpeg.begin() + static_cast<std::ptrdiff_t>(i + 5), jpeg.begin() + static_cast<std::ptrdiff_t>(i + 21), 0xFF);
            break;
        }
    CHECK(decode_error(jpeg).find("cannot decode image 'x'") != std::string::npos);
}

TEST_CASE("an image file whose read fails, or a symbolic link loop, is one error naming the file") {
    TempFolder folder;
    std::filesystem::create_symlink(folder.file("loop"), folder.file("loop"));
    CHECK_THROWS_WITH_AS(decode_image_file(folder.file("loop")), doctest::Contains("symbolic links"), Error);
    if (std::filesystem::exists("/proc/self/mem")) {  // a regular file whose read fails with EIO at offset 0
        std::filesystem::create_symlink("/proc/self/mem", folder.file("mem.png"));
        CHECK_THROWS_WITH_AS(decode_image_file(folder.file("mem.png")), doctest::Contains("reading the file failed"), Error);
    }
}

TEST_CASE("convert_channels uses luminance, replicates grey and drops alpha") {
    // Pixels: pure red, pure green, pure blue, white.
    const Image rgb{4, 1, 3, {1, 0, 0, 1, /**/ 0, 1, 0, 1, /**/ 0, 0, 1, 1}};
    check_pixels(convert_channels(rgb, 1), {0.299f, 0.587f, 0.114f, 1.0f});
    check_pixels(convert_channels(rgb, 3), rgb.pixels);

    const Image rgba{2, 1, 4, {0.2f, 0.4f, /**/ 0.6f, 0.8f, /**/ 1.0f, 0.0f, /**/ 0.5f, 0.5f}};
    check_pixels(convert_channels(rgba, 3), {0.2f, 0.4f, 0.6f, 0.8f, 1.0f, 0.0f});
    // 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0 = 0.526
    CHECK(convert_channels(rgba, 1).pixels[0] == doctest::Approx(0.526f).epsilon(kFloatTolerance));

    const Image grey{2, 1, 1, {0.1f, 0.9f}};
    check_pixels(convert_channels(grey, 3), {0.1f, 0.9f, 0.1f, 0.9f, 0.1f, 0.9f});
    const Image grey_alpha{2, 1, 2, {0.3f, 0.7f, /**/ 1.0f, 0.0f}};
    check_pixels(convert_channels(grey_alpha, 1), {0.3f, 0.7f});

    CHECK_THROWS_AS(convert_channels(grey, 2), Error);
    CHECK_THROWS_AS(convert_channels(Image{2, 2, 1, {0.0f}}, 1), Error);
}

TEST_CASE("resize keeps a constant image constant for odd and prime sizes") {
    const Image constant = constant_image(7, 5, 3, 0.375f);
    for (const auto& size : std::vector<std::pair<int, int>>{{13, 3}, {3, 11}, {7, 5}, {1, 1}, {29, 17}}) {
        const int width = size.first, height = size.second;  // plain variables: CAPTURE cannot take bindings in clang 14
        CAPTURE(width);
        CAPTURE(height);
        const Image resized = resize_image(constant, width, height);
        CHECK(resized.channels == 3);
        check_pixels(resized, std::vector<float>(static_cast<std::size_t>(width * height * 3), 0.375f));
    }
}

TEST_CASE("resize shrinks by area averaging along each axis") {
    // 4 -> 2: each output is the mean of a pair.
    check_pixels(resize_image(row_image({0.1f, 0.3f, 0.6f, 1.0f}), 2, 1), {0.2f, 0.8f});
    check_pixels(resize_image(column_image({0.1f, 0.3f, 0.6f, 1.0f}), 1, 2), {0.2f, 0.8f});
    // 3 -> 2: output 0 covers [0, 1.5): (1 * a + 0.5 * b) / 1.5; output 1 covers [1.5, 3): (0.5 * b + 1 * c) / 1.5.
    // a, b, c = 0.3, 0.6, 0.9 -> 0.4, 0.8
    check_pixels(resize_image(row_image({0.3f, 0.6f, 0.9f}), 2, 1), {0.4f, 0.8f});
    check_pixels(resize_image(column_image({0.3f, 0.6f, 0.9f}), 1, 2), {0.4f, 0.8f});
}

TEST_CASE("resize enlarges bilinearly with half-pixel centres and clamped edges") {
    // 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
    // a, b = 0.2, 0.6 -> 0.2, 0.75a + 0.25b = 0.3, 0.25a + 0.75b = 0.5, 0.6
    check_pixels(resize_image(row_image({0.2f, 0.6f}), 4, 1), {0.2f, 0.3f, 0.5f, 0.6f});
    check_pixels(resize_image(column_image({0.2f, 0.6f}), 1, 4), {0.2f, 0.3f, 0.5f, 0.6f});
}

TEST_CASE("resize is the identity when the size is kept, and resamples width and height independently") {
    Image image{3, 2, 2, {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, /**/ 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f}};
    check_pixels(resize_image(image, 3, 2), image.pixels);
    // Width 3 -> 2 (area weights 2/3, 1/3 and 1/3, 2/3), height 2 -> 4 (bilinear rows 0, 0.25, 0.75, 1).
    // Channel 0 rows after the width pass: (0.1333.., 0.2333..), (0.4333.., 0.5333..).
    const Image resized = resize_image(image, 2, 4);
    const float r0a = (2 * 0.1f + 0.2f) / 3, r0b = (0.2f + 2 * 0.3f) / 3;
    const float r1a = (2 * 0.4f + 0.5f) / 3, r1b = (0.5f + 2 * 0.6f) / 3;
    const std::vector<float> channel0 = {r0a, r0b, 0.75f * r0a + 0.25f * r1a, 0.75f * r0b + 0.25f * r1b,
                                         0.25f * r0a + 0.75f * r1a, 0.25f * r0b + 0.75f * r1b, r1a, r1b};
    REQUIRE(resized.pixels.size() == 16);
    for (std::size_t i = 0; i < channel0.size(); ++i) {
        CHECK(resized.pixels[i] == doctest::Approx(channel0[i]).epsilon(kFloatTolerance));
    }
    CHECK_THROWS_AS(resize_image(image, 0, 4), Error);
}

TEST_CASE("scan_labelled_folder sorts classes and images and counts what it skips") {
    TempFolder folder;
    const std::string root = folder.str();
    for (const char* name : {"b/1.png", "b/deep/nested/0.JPEG", "a/z.png", "a/m.bmp", "a/sub/k.pgm", "c/x.ppm",
                             "c/y.pnm", "c/w.Jpg"}) {
        write_bytes(folder.file(name), {1});
    }
    for (const char* name : {"a/.DS_Store", ".hidden_root_file", "b/.cache/inside.png", ".git/config"}) {
        write_bytes(folder.file(name), {1});
    }
    for (const char* name : {"a/notes.txt", "b/labels.csv", "readme.md", "c/noextension"}) {
        write_bytes(folder.file(name), {1});
    }
    fs::create_directories(root + "/empty_class");

    const FolderScan scan = scan_labelled_folder(root);
    CHECK(scan.class_names == std::vector<std::string>{"a", "b", "c", "empty_class"});
    CHECK(scan.class_counts == std::vector<std::size_t>{3, 2, 3, 0});
    CHECK(scan.skipped_hidden == 4);      // a/.DS_Store, .hidden_root_file, b/.cache (folder), .git (folder)
    CHECK(scan.skipped_non_image == 4);  // notes.txt, labels.csv, readme.md (in the root), noextension
    const std::vector<std::string> expected = {root + "/a/m.bmp",       root + "/a/sub/k.pgm",
                                               root + "/a/z.png",       root + "/b/1.png",
                                               root + "/b/deep/nested/0.JPEG", root + "/c/w.Jpg",
                                               root + "/c/x.ppm",       root + "/c/y.pnm"};
    CHECK(paths_of(scan.images) == expected);
    const std::vector<int> labels = {0, 0, 0, 1, 1, 2, 2, 2};
    for (std::size_t i = 0; i < labels.size(); ++i) CHECK(scan.images[i].label == labels[i]);
}

TEST_CASE("scan_labelled_folder errors name a missing folder, a file and a folder without classes") {
    TempFolder folder;
    const std::string missing = folder.str() + "/nope";
    CHECK_THROWS_WITH_AS(scan_labelled_folder(missing), mentions(missing), Error);
    const std::string file = folder.file("file.png");
    write_bytes(file, {1});
    CHECK_THROWS_WITH_AS(scan_labelled_folder(file), mentions("is not a folder"), Error);
    const std::string flat = folder.str() + "/flat";
    write_bytes(folder.file("flat/image.png"), {1});
    CHECK_THROWS_WITH_AS(scan_labelled_folder(flat), mentions("no class subfolders"), Error);
}

TEST_CASE("require_trainable needs two classes and an image in every class folder") {
    TempFolder folder;
    write_bytes(folder.file("single/only/1.png"), {1});
    const std::string single = folder.str() + "/single";
    CHECK_THROWS_WITH_AS(require_trainable(scan_labelled_folder(single), single), mentions("only 'only'"),
                         Error);

    write_bytes(folder.file("two/ok/1.png"), {1});
    write_bytes(folder.file("two/bad/readme.txt"), {1});
    const std::string two = folder.str() + "/two";
    CHECK_THROWS_WITH_AS(require_trainable(scan_labelled_folder(two), two), mentions(two + "/bad"), Error);

    write_bytes(folder.file("two/bad/2.png"), {1});
    CHECK_NOTHROW(require_trainable(scan_labelled_folder(two), two));
}

TEST_CASE("scan_with_classes labels by the model's class order and rejects unknown folders") {
    TempFolder folder;
    const std::string root = folder.str();
    for (const char* name : {"ok/1.png", "ok/2.png", "crack/1.png"}) write_bytes(folder.file(name), {1});

    const FolderScan scan = scan_with_classes(root, {"spatter", "ok", "crack"});
    CHECK(scan.class_names == std::vector<std::string>{"spatter", "ok", "crack"});
    CHECK(scan.class_counts == std::vector<std::size_t>{0, 2, 1});
    REQUIRE(scan.images.size() == 3);
    CHECK(scan.images[0].path == root + "/ok/1.png");
    CHECK(scan.images[0].label == 1);
    CHECK(scan.images[1].label == 1);
    CHECK(scan.images[2].path == root + "/crack/1.png");
    CHECK(scan.images[2].label == 2);

    CHECK_THROWS_WITH_AS(scan_with_classes(root, {"ok", "spatter"}), mentions("'ok', 'spatter'"), Error);
}

TEST_CASE("stratified_split follows floor((i + 1) f) > floor(i f) within each class") {
    std::vector<LabelledImage> images;
    for (int i = 0; i < 5; ++i) images.push_back({"a" + std::to_string(i), 0});
    for (int i = 0; i < 3; ++i) images.push_back({"b" + std::to_string(i), 1});

    // f = 0.4. Class a: floor(0.4 (i + 1)) - floor(0.4 i) for i = 0..4 is 0, 0, 1, 0, 1 -> a2, a4.
    // Class b: 0, 0, 1 -> b2.
    const Split split = stratified_split(images, 2, 0.4);
    CHECK(paths_of(split.validation) == std::vector<std::string>{"a2", "a4", "b2"});
    CHECK(paths_of(split.train) == std::vector<std::string>{"a0", "a1", "a3", "b0", "b1"});

    CHECK(stratified_split(images, 2, 0.0).validation.empty());
    CHECK_THROWS_AS(stratified_split(images, 2, 1.0), Error);
    CHECK_THROWS_AS(stratified_split(images, 2, -0.1), Error);
    CHECK_THROWS_AS(stratified_split(images, 2, std::nan("")), Error);
    CHECK_THROWS_AS(stratified_split(images, 1, 0.5), Error);  // label 1 outside one class
}

TEST_CASE("stratified_split represents every class and validates floor(n f) images per class") {
    std::vector<LabelledImage> images;
    const std::vector<int> class_sizes = {10, 7, 23};
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < class_sizes[static_cast<std::size_t>(c)]; ++i) images.push_back({std::to_string(i), c});

    const double fraction = 0.2;
    const Split split = stratified_split(images, 3, fraction);
    CHECK(split.train.size() + split.validation.size() == images.size());
    for (int c = 0; c < 3; ++c) {
        CAPTURE(c);
        const auto in_class = [c](const LabelledImage& image) { return image.label == c; };
        const auto expected = static_cast<long>(std::floor(class_sizes[static_cast<std::size_t>(c)] * fraction));
        CHECK(std::count_if(split.validation.begin(), split.validation.end(), in_class) == expected);
        CHECK(std::count_if(split.train.begin(), split.train.end(), in_class) > 0);
    }
    CHECK(std::is_sorted(split.validation.begin(), split.validation.end(),
                         [](const LabelledImage& a, const LabelledImage& b) { return a.label < b.label; }));
}

namespace {

// Ten constant 6x4 images; image i is "img<i>.png" with grey level (20 + 10 i) / 255 and label i % 2,
// so a sample's pixels tell which file it came from.
float loader_fixture_value(std::size_t i) { return static_cast<float>(20 + 10 * i) / 255.0f; }

float loader_fixture_value(const std::string& path) {
    return loader_fixture_value(std::stoul(fs::path(path).stem().string().substr(3)));
}

std::vector<LabelledImage> write_loader_fixture(const TempFolder& folder, std::size_t count = 10) {
    std::vector<LabelledImage> images;
    for (std::size_t i = 0; i < count; ++i) {
        const std::string path = folder.file("img" + std::to_string(i) + ".png");
        write_constant_png(path, loader_fixture_value(i));
        images.push_back({path, static_cast<int>(i % 2)});
    }
    return images;
}

InputFormat small_format() {
    InputFormat format;
    format.width = 3;
    format.height = 2;
    format.channels = 1;
    return format;
}

// Reads one epoch, checking batch shapes and that every sample holds its own file's pixels.
std::vector<std::size_t> read_epoch(BatchLoader& loader, int epoch, std::vector<int>* batch_sizes = nullptr) {
    loader.start_epoch(epoch);
    std::vector<std::size_t> order;
    Batch batch;
    while (loader.next(batch)) {
        const int n = batch.images.shape()[0];
        if (batch_sizes) batch_sizes->push_back(n);
        REQUIRE(batch.images.shape() == Shape{n, 1, 2, 3});
        REQUIRE(batch.labels.size() == static_cast<std::size_t>(n));
        REQUIRE(batch.indices.size() == static_cast<std::size_t>(n));
        for (int s = 0; s < n; ++s) {
            const std::size_t index = batch.indices[static_cast<std::size_t>(s)];
            CHECK(batch.labels[static_cast<std::size_t>(s)] == loader.images().at(index).label);
            for (std::size_t p = 0; p < 6; ++p) {
                const float pixel = batch.images[static_cast<std::size_t>(s) * 6 + p];
                const float expected = loader_fixture_value(loader.images().at(index).path);
                CHECK(pixel == doctest::Approx(expected).epsilon(kEightBitTolerance));
            }
            order.push_back(index);
        }
    }
    return order;
}

std::vector<std::size_t> sorted(std::vector<std::size_t> values) {
    std::sort(values.begin(), values.end());
    return values;
}

}  // namespace

TEST_CASE("the loader yields every image exactly once per epoch in full batches but the last") {
    TempFolder folder;
    BatchLoader loader(write_loader_fixture(folder), small_format(), {4, true, 11, false, 2});
    CHECK(loader.size() == 10);
    for (int epoch = 0; epoch < 3; ++epoch) {
        std::vector<int> batch_sizes;
        const std::vector<std::size_t> order = read_epoch(loader, epoch, &batch_sizes);
        CHECK(batch_sizes == std::vector<int>{4, 4, 2});
        CHECK(sorted(order) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        Batch after_end;
        CHECK_FALSE(loader.next(after_end));
    }
    CHECK(loader.skipped() == 0);

    BatchLoader in_order(write_loader_fixture(folder), small_format(), {3, false, 0, false, 1});
    CHECK(read_epoch(in_order, 5) == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("the loader order depends only on seed and epoch") {
    TempFolder folder;
    const std::vector<LabelledImage> images = write_loader_fixture(folder);
    BatchLoader first(images, small_format(), {4, true, 99, false, 3});
    BatchLoader second(images, small_format(), {7, true, 99, false, 1});
    BatchLoader other_seed(images, small_format(), {4, true, 100, false, 3});

    const std::vector<std::size_t> epoch0 = read_epoch(first, 0);
    const std::vector<std::size_t> epoch1 = read_epoch(first, 1);
    CHECK(epoch0 != epoch1);
    CHECK(read_epoch(second, 1) == epoch1);  // batch size and prefetch do not change the order
    CHECK(read_epoch(second, 0) == epoch0);
    CHECK(read_epoch(other_seed, 0) != epoch0);
    CHECK(read_epoch(first, 0) == epoch0);  // served from the cache now, same order and pixels
}

TEST_CASE("the loader can restart or be destroyed in the middle of an epoch") {
    TempFolder folder;
    const std::vector<LabelledImage> images = write_loader_fixture(folder);
    {
        BatchLoader loader(images, small_format(), {2, true, 3, false, 1});
        loader.start_epoch(0);
        Batch batch;
        CHECK(loader.next(batch));
        CHECK(sorted(read_epoch(loader, 1)).size() == 10);  // the rest of epoch 0 is abandoned
        loader.start_epoch(2);
        CHECK(loader.next(batch));
    }  // destroyed with epoch 2 unfinished: must not hang
    BatchLoader unused(images, small_format(), {2, true, 3, false, 1});
    Batch batch;
    CHECK_THROWS_AS(unused.next(batch), std::logic_error);
}

TEST_CASE("the loader skips a corrupt image once and keeps batches full; strict mode throws") {
    TempFolder folder;
    std::vector<LabelledImage> images = write_loader_fixture(folder);
    const std::string corrupt = folder.file("corrupt.png");
    write_bytes(corrupt, {0x89, 'P', 'N', 'G', 1, 2, 3});
    images.insert(images.begin() + 3, {corrupt, 1});  // index 3 in the loader's list

    BatchLoader loader(images, small_format(), {4, false, 0, false, 2});
    for (int epoch = 0; epoch < 2; ++epoch) {
        std::vector<int> batch_sizes;
        const std::vector<std::size_t> order = read_epoch(loader, epoch, &batch_sizes);
        CHECK(batch_sizes == std::vector<int>{4, 4, 2});
        CHECK(order == std::vector<std::size_t>{0, 1, 2, 4, 5, 6, 7, 8, 9, 10});
        CHECK(loader.skipped() == 1);  // distinct images, not attempts
    }

    BatchLoader strict(images, small_format(), {4, true, 0, true, 2});
    strict.start_epoch(0);
    Batch batch;
    const auto drain = [&] {
        while (strict.next(batch)) {
        }
    };
    CHECK_THROWS_WITH_AS(drain(), mentions(corrupt), Error);
    CHECK_FALSE(strict.next(batch));  // the failed epoch is over
}

TEST_CASE("estimate_normalization measures mean and stddev after conversion and resize") {
    TempFolder folder;
    // Two constant images at 0.2 and 0.6 (51 and 153 of 255): mean 0.4, stddev 0.2.
    const std::string dark = folder.file("dark.png"), light = folder.file("light.png");
    write_constant_png(dark, 51.0f / 255.0f, 9, 7);
    write_png(light, constant_image(5, 5, 3, 153.0f / 255.0f));
    const std::string corrupt = folder.file("corrupt.png");
    write_bytes(corrupt, {1, 2, 3});

    InputFormat format = small_format();
    estimate_normalization({{dark, 0}, {corrupt, 0}, {light, 1}}, format);
    REQUIRE(format.mean.size() == 1);
    CHECK(format.mean[0] == doctest::Approx(0.4f).epsilon(kFloatTolerance));
    CHECK(format.stddev[0] == doctest::Approx(0.2f).epsilon(kFloatTolerance));

    std::vector<float> normalised(6);
    preprocess_into(decode_image_file(light), format, normalised.data());
    for (float value : normalised) CHECK(value == doctest::Approx(1.0f).epsilon(1e-5));

    InputFormat colour = small_format();
    colour.channels = 3;
    estimate_normalization({{dark, 0}}, colour);
    REQUIRE(colour.mean.size() == 3);
    for (std::size_t c = 0; c < 3; ++c) {
        CHECK(colour.mean[c] == doctest::Approx(0.2f).epsilon(kFloatTolerance));
        CHECK(colour.stddev[c] == 1e-3f);  // a constant set hits the floor
    }

    InputFormat untouched = small_format();
    CHECK_THROWS_AS(estimate_normalization({{corrupt, 0}}, untouched), Error);
    CHECK(untouched.mean.empty());
}

TEST_CASE("preprocess_into rejects a malformed input format") {
    const Image image = constant_image(4, 4, 1, 0.5f);
    std::vector<float> out(64);
    InputFormat format = small_format();
    format.mean = {0.5f};
    format.stddev = {0.0f};
    CHECK_THROWS_AS(preprocess_into(image, format, out.data()), Error);
    format.stddev = {0.1f, 0.1f};
    CHECK_THROWS_AS(preprocess_into(image, format, out.data()), Error);
    format = small_format();
    format.channels = 2;
    CHECK_THROWS_AS(preprocess_into(image, format, out.data()), Error);
}

TEST_CASE("the synthetic dataset has per_class images per class and is reproducible from its seed") {
    TempFolder folder;
    SynthOptions options;
    options.per_class = 3;
    options.width = 32;
    options.height = 24;
    options.seed = 5;
    std::size_t last_done = 0, reported_total = 0;
    write_synthetic_dataset(folder.str() + "/one", options, [&](std::size_t done, std::size_t total) {
        CHECK(done == last_done + 1);
        last_done = done;
        reported_total = total;
    });
    CHECK(last_done == 15);
    CHECK(reported_total == 15);
    write_synthetic_dataset(folder.str() + "/two", options);
    options.seed = 6;
    write_synthetic_dataset(folder.str() + "/three", options);

    const FolderScan scan = scan_labelled_folder(folder.str() + "/one");
    CHECK(scan.class_names == kSynthClasses);
    CHECK(scan.class_counts == std::vector<std::size_t>(kSynthClasses.size(), 3));
    const Image first = decode_image_file(scan.images.front().path);
    CHECK(first.width == 32);
    CHECK(first.height == 24);
    CHECK(first.channels == 1);

    std::size_t differing = 0;
    for (const std::string& name : kSynthClasses) {
        for (int i = 0; i < 3; ++i) {
            const std::string relative = "/" + name + "/" + name + "_000" + std::to_string(i) + ".png";
            const std::vector<unsigned char> bytes = read_bytes(folder.str() + "/one" + relative);
            REQUIRE_FALSE(bytes.empty());
            CHECK(bytes == read_bytes(folder.str() + "/two" + relative));
            differing += bytes != read_bytes(folder.str() + "/three" + relative);
        }
    }
    CHECK(differing == 15);

    options.per_class = 0;
    CHECK_THROWS_AS(write_synthetic_dataset(folder.str() + "/bad", options), Error);
    options.per_class = 1;
    options.width = 7;
    CHECK_THROWS_AS(write_synthetic_dataset(folder.str() + "/bad", options), Error);
    options.width = 32;
    write_bytes(folder.file("blocked"), {1});
    CHECK_THROWS_WITH_AS(write_synthetic_dataset(folder.str() + "/blocked", options), mentions("blocked"),
                         Error);
}

namespace {

// Strongest dark and bright departures from the 9x9 local mean, averaged over images of one class:
// lighting is smooth and cancels, so what remains is grain and defects.
std::pair<double, double> mean_local_extremes(int class_index) {
    constexpr int kWidth = 64, kHeight = 48, kImages = 16, kReach = 4;
    double dark = 0.0, bright = 0.0;
    for (int k = 0; k < kImages; ++k) {
        Rng rng(static_cast<std::uint64_t>(900 + k));
        const Image image = render_synthetic_surface(class_index, kWidth, kHeight, rng);
        const auto at = [&](int x, int y) { return image.pixels[static_cast<std::size_t>(y * kWidth + x)]; };
        float darkest = 0.0f, brightest = 0.0f;
        for (int y = kReach; y < kHeight - kReach; ++y) {
            for (int x = kReach; x < kWidth - kReach; ++x) {
                float sum = 0.0f;
                for (int dy = -kReach; dy <= kReach; ++dy)
                    for (int dx = -kReach; dx <= kReach; ++dx) sum += at(x + dx, y + dy);
                const float residual = at(x, y) - sum / 81.0f;
                darkest = std::min(darkest, residual);
                brightest = std::max(brightest, residual);
            }
        }
        dark -= darkest;
        bright += brightest;
    }
    return {dark / kImages, bright / kImages};
}

}  // namespace

TEST_CASE("synthetic defects leave marks a normal surface does not have") {
    constexpr double kClearMargin = 0.03;  // measured gaps are 0.05 (hole) to 0.2 (spatter)
    const auto index_of = [](const char* name) {
        return static_cast<int>(std::find(kSynthClasses.begin(), kSynthClasses.end(), name) - kSynthClasses.begin());
    };
    const auto [normal_dark, normal_bright] = mean_local_extremes(index_of("normal"));
    for (const char* dark_defect : {"crack", "hole", "pinhole"}) {
        CAPTURE(dark_defect);
        CHECK(mean_local_extremes(index_of(dark_defect)).first > normal_dark + kClearMargin);
    }
    CHECK(mean_local_extremes(index_of("spatter")).second > normal_bright + kClearMargin);

    Rng rng(1);
    CHECK_THROWS_AS(render_synthetic_surface(5, 32, 32, rng), Error);
    CHECK_THROWS_AS(render_synthetic_surface(0, 32, 4097, rng), Error);
}

TEST_CASE("JPEG decoding is strict: a truncated or corrupted file is an error, never pixels made up by the decoder") {
    Image image{48, 32, 3, std::vector<float>(48 * 32 * 3)};
    for (std::size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<float>((i * 37) % 101) / 100.0f;
    const std::vector<unsigned char> jpeg = encode_jpeg(image, 90, "test");
    const Image whole = decode_image_memory(jpeg.data(), jpeg.size(), "whole.jpg");
    CHECK(whole.width == 48);
    CHECK(whole.channels == 3);
    const std::vector<unsigned char> truncated(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() * 3 / 5));
    CHECK_THROWS_WITH_AS(decode_image_memory(truncated.data(), truncated.size(), "cut.jpg"),
                         doctest::Contains("cut.jpg': bad JPEG data"), Error);
    CHECK_THROWS_WITH_AS(decode_image_memory(truncated.data(), truncated.size(), "cut.jpg"),
                         doctest::Contains("corrupt or truncated"), Error);
    std::vector<unsigned char> huge_header = jpeg;  // the frame header's height and width set to 60000 x 60000
    for (std::size_t i = 0; i + 8 < huge_header.size(); ++i) {
        if (huge_header[i] == 0xFF && huge_header[i + 1] == 0xC0) {
            for (const std::size_t at : {i + 5, i + 7}) {
                huge_header[at] = 0xEA;
                huge_header[at + 1] = 0x60;
            }
            break;
        }
    }
    CHECK_THROWS_WITH_AS(decode_image_memory(huge_header.data(), huge_header.size(), "huge.jpg"),
                         doctest::Contains("exceeds the limit"), Error);
}

TEST_CASE("a JPEG twice the size asked for or more decodes at the smallest DCT scale that keeps that size") {
    Rng rng(5);
    const Image surface = resize_image(render_synthetic_surface(0, 160, 120, rng), 640, 480);
    const std::vector<unsigned char> jpeg = encode_jpeg(surface, 90, "frame");
    const auto decoded = [&](DecodeSize size) { return decode_image_memory(jpeg.data(), jpeg.size(), "frame", size); };
    const Image full = decoded({});
    CHECK(full.width == 640);
    CHECK(full.height == 480);
    const Image quarter = decoded({160, 120});  // 1/4 keeps 160 x 120 exactly
    CHECK(quarter.width == 160);
    CHECK(quarter.height == 120);
    const Image scaled = decoded({240, 160});  // 1/4 would give 160 wide, too narrow: 3/8
    CHECK(scaled.width == 240);
    CHECK(scaled.height == 180);
    CHECK(decoded({300, 200}).width == 320);  // 1/2
    CHECK(decoded({400, 100}).width == 640);  // only 5/8 and above keep 400 wide: not worth it
    CHECK(decoded({1, 1}).width == 80);       // at most 1/8
    // The scaled decode is a shrunk image of the same frame: close to the full decode shrunk by area averaging.
    const Image shrunk = resize_image(full, scaled.width, scaled.height);
    double difference = 0;
    for (std::size_t i = 0; i < scaled.pixels.size(); ++i) difference += std::abs(scaled.pixels[i] - shrunk.pixels[i]);
    CHECK(difference / static_cast<double>(scaled.pixels.size()) < 0.02);
    // Other formats decode at full size.
    const std::vector<unsigned char> png = encode_png(surface, "frame");
    CHECK(decode_image_memory(png.data(), png.size(), "frame.png", {160, 120}).width == 640);
}

TEST_CASE("a batch too large for memory ends the epoch with std::bad_alloc in the caller's thread, not the process") {
#if EDGEQC_ADDRESS_SANITIZER
    MESSAGE("skipped under AddressSanitizer, whose operator new reports running out of memory instead of throwing");
    return;
#endif
    TempFolder folder;
    BatchLoader loader(write_loader_fixture(folder), small_format(), {INT_MAX, false, 0, false, 1});
    loader.start_epoch(0);
    Batch batch;
    CHECK_THROWS_AS(loader.next(batch), std::bad_alloc);  // 51 GB for 6-float samples: more than this machine has
}
