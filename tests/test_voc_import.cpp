// Pascal VOC import: the XML reader on valid and malformed documents, crops checked pixel by pixel against
// the source image, and every kind of bad input (missing image, box outside, bad label, malformed file)
// counted and named, or fatal with --strict. Fixtures are written by the tests; the real NEU-DET
// annotations are used when ../shared is present.
#include <doctest/doctest.h>

#include <fstream>

#include "data/image.hpp"
#include "data/voc_import.hpp"
#include "engine/error.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string annotation(const std::string& filename, const std::string& objects) {
    return "<?xml version=\"1.0\"?>\n<annotation verified=\"yes\">\n  <folder>x</folder>\n  <filename>" + filename +
           "</filename>\n  <size><width>10</width><height>8</height><depth>1</depth></size>\n  <segmented/>\n" + objects +
           "</annotation>\n";
}

std::string object(const std::string& label, int xmin, int ymin, int xmax, int ymax) {
    return "  <object><name>" + label + "</name><difficult>0</difficult><bndbox><xmin>" + std::to_string(xmin) +
           "</xmin><ymin>" + std::to_string(ymin) + "</ymin><xmax>" + std::to_string(xmax) + "</xmax><ymax>" +
           std::to_string(ymax) + "</ymax></bndbox></object>\n";
}

// A 10 x 8 grey image whose pixel (x, y) holds (10 y + x) / 255, so every crop can be checked exactly.
Image numbered_image() {
    Image image{10, 8, 1, {}};
    for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 10; ++x) image.pixels.push_back(static_cast<float>(10 * y + x) / 255.0f);
    return image;
}

std::string parse_error(const std::string& xml) {
    try {
        parse_voc_annotation(xml, "f.xml");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("voc: a LabelImg document with declaration, attributes, comments, entities and CDATA parses") {
    const VocAnnotation a = parse_voc_annotation(
        "<?xml version='1.0' encoding='utf-8'?>\n<!-- LabelImg -->\n<annotation>\n<filename>part&#32;7.jpg</filename>\n"
        "<size><width>640</width><height>480</height></size>\n"
        "<object><name>scratch &amp; pit</name><bndbox><xmin>1.5</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>\n"
        "<object><name><![CDATA[hole]]></name><pose>Unspecified</pose><bndbox><xmin>5</xmin><ymin>6</ymin>"
        "<xmax>7</xmax><ymax>8</ymax></bndbox></object>\n</annotation>\n",
        "a.xml");
    CHECK(a.filename == "part 7.jpg");
    CHECK(a.width == 640);
    CHECK(a.height == 480);
    REQUIRE(a.boxes.size() == 2);
    CHECK(a.boxes[0].label == "scratch & pit");
    CHECK(a.boxes[0].xmin == 1.5);
    CHECK(a.boxes[0].ymax == 40);
    CHECK(a.boxes[1].label == "hole");
}

TEST_CASE("voc: a document that starts with a UTF-8 byte-order mark parses") {
    const VocAnnotation a = parse_voc_annotation("\xEF\xBB\xBF<?xml version='1.0'?>\n<annotation><filename>b.png</filename>"
                                                 "</annotation>\n",
                                                 "bom.xml");
    CHECK(a.filename == "b.png");
    CHECK(parse_error("\xEF\xBB<annotation/>").find("malformed XML") != std::string::npos);  // half a mark is not one
}

TEST_CASE("voc: malformed documents fail with the file, the line and the reason") {
    CHECK(parse_error("<annotation>\n<filename>a</filename>\n").find("f.xml: malformed XML at line 3: <annotation> is never closed") !=
          std::string::npos);
    CHECK(parse_error("<annotation><a></b></annotation>").find("</b> closes <a>") != std::string::npos);
    CHECK(parse_error("<annotation>&bogus;</annotation>").find("unknown entity") != std::string::npos);
    CHECK(parse_error("<annotation>a & b</annotation>").find("starts no entity") != std::string::npos);
    CHECK(parse_error("<annotation x=1></annotation>").find("quoted attribute") != std::string::npos);
    CHECK(parse_error("<annotation></annotation><x/>").find("after the root") != std::string::npos);
    CHECK(parse_error("").find("expected the root element") != std::string::npos);
    std::string deep;
    for (int i = 0; i < 70; ++i) deep += "<a>";
    CHECK(parse_error(deep).find("deeper than 64") != std::string::npos);
    CHECK(parse_error("<root/>").find("not <annotation>") != std::string::npos);
    CHECK(parse_error(annotation("a.png", "<object><name>x</name></object>")).find("has no <bndbox>") != std::string::npos);
    CHECK(parse_error(annotation("a.png", "<object><bndbox/></object>")).find("has no <name>") != std::string::npos);
    CHECK(parse_error(annotation("a.png", "<object><name>x</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3px</xmax>"
                                          "<ymax>4</ymax></bndbox></object>"))
              .find("<xmax> at line 7 is not a number: '3px'") != std::string::npos);
}

TEST_CASE("voc: import crops each box exactly, pads, clips, counts every skip, and passes over symbolic link loops") {
    TempFolder folder;
    fs::create_directories(folder.file("images/sub"));
    fs::create_directories(folder.file("xml"));
    write_png(folder.file("images/sub/part.png"), numbered_image());
    write_bytes(folder.file("images/broken.png"), {1, 2, 3});
    write_text(folder.file("xml/part.xml"),
               annotation("part.png", object("crack", 2, 3, 5, 6) +     // x 1..4, y 2..5 (0-based)
                                          object("crack", 9, 7, 12, 9) +  // reaches outside: clipped to x 8..9, y 6..7
                                          object("hole", 20, 20, 30, 30) +  // outside
                                          object("../up", 1, 1, 2, 2) +     // not a folder name
                                          object("dot", 4, 4, 4, 4)));      // 1 x 1, below --min-size 2
    write_text(folder.file("xml/lost.xml"), annotation("lost.jpg", object("crack", 1, 1, 3, 3)));
    write_text(folder.file("xml/broken.xml"), annotation("broken.png", object("crack", 1, 1, 3, 3)));
    write_text(folder.file("xml/bad.xml"), "<annotation><object>");
    // Symbolic link loops in both folders are left out, not the end of the import.
    fs::create_symlink(folder.file("images/loop.png"), folder.file("images/loop.png"));
    fs::create_symlink(folder.file("xml/loop.xml"), folder.file("xml/loop.xml"));
    std::vector<std::string> warnings;
    VocImportOptions options;
    options.min_size = 2;
    const VocImportReport r = import_voc(folder.file("images"), folder.file("xml"), folder.file("out"), options,
                                         [&](const std::string& w) { warnings.push_back(w); });
    CHECK(r.annotations == 4);
    CHECK(r.crops_written == 2);
    CHECK(r.malformed_annotations == 1);
    CHECK(r.missing_images == 1);
    CHECK(r.unreadable_images == 1);
    CHECK(r.boxes_outside == 1);
    CHECK(r.boxes_clipped == 1);
    CHECK(r.bad_labels == 1);
    CHECK(r.boxes_too_small == 1);
    CHECK(warnings.size() == 6);  // every problem but the user's own --min-size filter
    REQUIRE(r.crops_per_label.size() == 1);
    CHECK(r.crops_per_label[0] == std::pair<std::string, std::size_t>{"crack", 2});

    const Image first = decode_image_file(folder.file("out/crack/part_1.png"));
    REQUIRE(first.width == 4);
    REQUIRE(first.height == 4);
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) CHECK(first.pixels[static_cast<std::size_t>(y * 4 + x)] * 255.0f == doctest::Approx(10 * (y + 2) + x + 1));
    const Image clipped = decode_image_file(folder.file("out/crack/part_2.png"));
    CHECK(clipped.width == 2);
    CHECK(clipped.height == 2);
    CHECK(clipped.pixels[0] * 255.0f == doctest::Approx(68));  // pixel (8, 6)

    options.pad = 1;
    import_voc(folder.file("images"), folder.file("xml"), folder.file("padded"), options, [](const std::string&) {});
    const Image padded = decode_image_file(folder.file("padded/crack/part_1.png"));
    CHECK(padded.width == 6);
    CHECK(padded.height == 6);
    CHECK(padded.pixels[0] * 255.0f == doctest::Approx(10));  // pixel (0, 1)

    options.strict = true;  // the first problem ends the import, and its message does not claim a skip
    try {
        import_voc(folder.file("images"), folder.file("xml"), folder.file("strict"), options, [](const std::string&) {});
        FAIL("--strict imported a folder with problems");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("skipped") == std::string::npos);
    }
    options = {};
    options.pad = -1;
    CHECK_THROWS_WITH_AS(import_voc(folder.file("images"), folder.file("xml"), folder.file("x"), options, [](const std::string&) {}),
                         doctest::Contains("--pad"), Error);
    CHECK_THROWS_WITH_AS(import_voc(folder.file("nowhere"), folder.file("xml"), folder.file("x"), {}, [](const std::string&) {}),
                         doctest::Contains("does not exist"), Error);
}

TEST_CASE("cli: import-voc reports counts, and fails clearly when nothing can be written") {
    TempFolder folder;
    fs::create_directories(folder.file("images"));
    fs::create_directories(folder.file("xml"));
    write_png(folder.file("images/part.png"), numbered_image());
    write_text(folder.file("xml/part.xml"), annotation("part.png", object("crack", 2, 3, 5, 6)));
    const CommandResult ok = run_edgeqc("import-voc '" + folder.file("images") + "' '" + folder.file("xml") + "' '" +
                                        folder.file("out") + "'");
    INFO(ok.output);
    CHECK(ok.exit_code == 0);
    CHECK(ok.output.find("wrote 1 crops") != std::string::npos);
    write_text(folder.file("xml/part.xml"), "<annotation>");
    const CommandResult broken = run_edgeqc("import-voc '" + folder.file("images") + "' '" + folder.file("xml") + "' '" +
                                            folder.file("out2") + "'");
    CHECK(broken.exit_code != 0);
    CHECK(broken.output.find("malformed XML") != std::string::npos);
    CHECK(broken.output.find("no crops were written") != std::string::npos);
    CHECK(run_edgeqc("import-voc '" + folder.file("missing") + "' '" + folder.file("xml") + "' '" + folder.file("o") + "'").exit_code != 0);
}

TEST_CASE("voc: the NEU-DET annotations import completely (skipped without ../shared)") {
    const std::string root = std::string(EDGEQC_SOURCE_DIR) + "/../shared/datasets/neu_steel";
    if (!fs::is_directory(root + "/annotations_voc")) {
        MESSAGE("skipped: no " << root);
        return;
    }
    TempFolder folder;
    const VocImportReport r = import_voc(root, root + "/annotations_voc", folder.file("out"), {}, [](const std::string&) {});
    CHECK(r.annotations == 1800);
    CHECK(r.crops_written == r.boxes);
    CHECK(r.crops_per_label.size() == 6);
}
