// Writes the seed corpora of the fuzz targets into OUT/<target>/: valid inputs of every kind each target parses,
// made by edgeqc itself (synthetic images in every format, a small model file without its CRC trailer, a LabelImg
// document, an MJPEG stream with garbage and a cut frame, an envelope, the node commands), so the fuzzer starts
// from deep inside each parser. Usage: write_fuzz_seeds OUT
#include <stb/stb_image_write.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "data/synth.hpp"
#include "edge/model_envelope.hpp"
#include "engine/model_file.hpp"
#include "engine/rng.hpp"
#include "layers/network.hpp"

using namespace edgeqc;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<unsigned char>;

void write(const fs::path& path, const Bytes& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes text(const std::string& s) { return {s.begin(), s.end()}; }

Bytes netpbm(const Image& image) {  // binary PGM or PPM of an 8-bit image
    const std::string header = std::string(image.channels == 1 ? "P5" : "P6") + "\n# seed\n" + std::to_string(image.width) +
                               " " + std::to_string(image.height) + "\n255\n";
    Bytes out = text(header);
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    for (std::size_t p = 0; p < plane; ++p)
        for (int c = 0; c < image.channels; ++c)
            out.push_back(static_cast<unsigned char>(image.pixels[static_cast<std::size_t>(c) * plane + p] * 255.0f + 0.5f));
    return out;
}

Bytes bmp(const Image& image) {
    Bytes interleaved;
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    for (std::size_t p = 0; p < plane; ++p)
        for (int c = 0; c < image.channels; ++c)
            interleaved.push_back(static_cast<unsigned char>(image.pixels[static_cast<std::size_t>(c) * plane + p] * 255.0f + 0.5f));
    Bytes out;
    stbi_write_bmp_to_func(
        [](void* context, void* data, int size) {
            auto* bytes = static_cast<Bytes*>(context);
            bytes->insert(bytes->end(), static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
        },
        &out, image.width, image.height, image.channels, interleaved.data());
    return out;
}

Bytes model_file(const fs::path& scratch) {
    ModelDescription d;
    d.architecture = "c4bn-p-c6-p-fc";
    d.class_names = {"crack", "normal"};
    d.input.height = 12;
    d.input.width = 16;
    auto network = build_network(d);
    network->initialize(InitScheme::He, 1);
    save_model(scratch.string(), network->to_model(d));
    return read_model_file(scratch.string());
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fputs("usage: write_fuzz_seeds OUT\n", stderr);
        return 2;
    }
    const fs::path out = argv[1];
    Rng rng(7);
    const Image grey = render_synthetic_surface(0, 24, 16, rng);
    const Image colour = convert_channels(render_synthetic_surface(4, 20, 12, rng), 3);
    write(out / "image/grey.jpg", encode_jpeg(grey, 80, "seed"));
    write(out / "image/colour.jpg", encode_jpeg(colour, 80, "seed"));
    write(out / "image/large.jpg", encode_jpeg(resize_image(grey, 96, 64), 70, "seed"));  // decoded at a DCT scale
    write(out / "image/grey.png", encode_png(grey, "seed"));
    write(out / "image/colour.png", encode_png(colour, "seed"));
    write(out / "image/grey.pgm", netpbm(grey));
    write(out / "image/colour.ppm", netpbm(colour));
    write(out / "image/grey.bmp", bmp(grey));
    write(out / "image/colour.bmp", bmp(colour));

    Bytes model = model_file(out / "scratch.eqc");
    fs::remove(out / "scratch.eqc");
    write(out / "envelope/model", text(seal_model_envelope(model)));
    model.resize(model.size() - 4);  // the target appends the CRC
    write(out / "model_file/model", model);

    write(out / "voc/labelimg.xml",
          text("<?xml version='1.0' encoding='utf-8'?>\n<annotation>\n<folder>parts</folder>\n<filename>part 7.jpg</filename>\n"
               "<size><width>640</width><height>480</height><depth>1</depth></size>\n<object><name>scratch</name>"
               "<pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult><bndbox><xmin>12</xmin>"
               "<ymin>20.5</ymin><xmax>300</xmax><ymax>240</ymax></bndbox></object>\n<object><name><![CDATA[pit &amp; hole]]>"
               "</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>\n</annotation>\n"));

    Bytes stream{7};  // the first byte sets the chunk size the splitter is fed in
    const Bytes frame = encode_jpeg(grey, 60, "seed");
    for (int i = 0; i < 3; ++i) {
        stream.insert(stream.end(), frame.begin(), frame.end());
        if (i == 0) stream.insert(stream.end(), {'n', 'o', 'i', 's', 'e', 0xFF, 0x00});
    }
    stream.insert(stream.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(frame.size() / 2));
    write(out / "mjpeg/stream", stream);

    const char* commands[] = {R"({"cmd":"pause"})", R"({"cmd":"resume"})", R"({"cmd":"thresholds","reinspect":0.4,"defective":0.7})",
                              R"({"cmd":"reload"})", R"({"cmd":"rollback"})"};
    for (int i = 0; i < 5; ++i) write(out / ("command/" + std::to_string(i)), text(commands[i]));
    return 0;
}
