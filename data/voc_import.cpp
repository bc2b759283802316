// A small, bounds-checked XML reader (elements, text, attributes skipped, comments, CDATA, the five named
// and numeric character entities) and the VOC-to-folders import on top of it.
#include "data/voc_import.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/image.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxXmlBytes = std::size_t{16} << 20;
constexpr int kMaxXmlDepth = 64;
constexpr std::size_t kMaxXmlElements = 100000;  // a VOC file has a few dozen; this bounds memory and time
constexpr double kMaxCoordinate = 1e7;           // beyond any image edgeqc decodes (kMaxImageSide)

struct XmlElement {
    std::string name, text;
    std::vector<XmlElement> children;
    std::size_t line = 0;

    const XmlElement* child(const std::string& wanted) const {
        for (const XmlElement& c : children)
            if (c.name == wanted) return &c;
        return nullptr;
    }
};

std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return "";
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

class XmlReader {
public:
    XmlReader(const std::string& text, const std::string& source) : text_(text), source_(source) {
        if (text.size() > kMaxXmlBytes) throw Error(source + ": larger than 16 MiB, not an annotation file");
    }

    XmlElement document() {
        if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;  // a UTF-8 byte-order mark, as Windows editors write
        skip_misc();
        if (!at("<")) fail("expected the root element");
        XmlElement root = element(0);
        skip_misc();
        if (pos_ != text_.size()) fail("text after the root element");
        return root;
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        throw Error(source_ + ": malformed XML at line " + std::to_string(line()) + ": " + what);
    }

    // The line of pos_. pos_ only moves forward, so counting from the last call keeps the whole parse linear.
    std::size_t line() {
        const std::size_t end = std::min(pos_, text_.size());
        if (end > counted_to_)
            counted_line_ += static_cast<std::size_t>(std::count(text_.begin() + static_cast<std::ptrdiff_t>(counted_to_),
                                                                 text_.begin() + static_cast<std::ptrdiff_t>(end), '\n'));
        counted_to_ = std::max(counted_to_, end);
        return counted_line_;
    }

    bool at(const char* token) const { return text_.compare(pos_, std::char_traits<char>::length(token), token) == 0; }

    // Moves past `end`, which must occur; returns what lay between.
    std::string until(const char* end, const char* what) {
        const std::size_t found = text_.find(end, pos_);
        if (found == std::string::npos) fail(std::string("unterminated ") + what);
        std::string inside = text_.substr(pos_, found - pos_);
        pos_ = found + std::char_traits<char>::length(end);
        return inside;
    }

    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }

    // Whitespace, the XML declaration, processing instructions, comments and a DOCTYPE (without internal subset).
    void skip_misc() {
        while (true) {
            skip_space();
            if (at("<?")) until("?>", "processing instruction");
            else if (at("<!--")) until("-->", "comment");
            else if (at("<!DOCTYPE")) until(">", "DOCTYPE");
            else return;
        }
    }

    std::string name() {
        const std::size_t start = pos_;
        while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
                                       text_[pos_] == '-' || text_[pos_] == '.' || text_[pos_] == ':'))
            ++pos_;
        if (pos_ == start) fail("expected a tag name");
        return text_.substr(start, pos_ - start);
    }

    void skip_attributes() {
        while (true) {
            skip_space();
            if (pos_ >= text_.size()) fail("unterminated tag");
            if (text_[pos_] == '>' || at("/>")) return;
            name();
            skip_space();
            if (!at("=")) fail("expected '=' after an attribute name");
            ++pos_;
            skip_space();
            if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) fail("expected a quoted attribute value");
            const char quote[2] = {text_[pos_++], '\0'};
            until(quote, "attribute value");
        }
    }

    std::string decoded(const std::string& raw) {
        std::string out;
        for (std::size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] != '&') {
                out += raw[i];
                continue;
            }
            const std::size_t end = raw.find(';', i);
            if (end == std::string::npos || end - i > 10) fail("an '&' that starts no entity");
            const std::string entity = raw.substr(i + 1, end - i - 1);
            static const std::map<std::string, char> named = {{"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
            if (named.count(entity)) {
                out += named.at(entity);
            } else if (entity.size() > 1 && entity[0] == '#') {
                const bool hex = entity[1] == 'x';
                const std::string digits = entity.substr(hex ? 2 : 1);
                const bool well_formed = !digits.empty() && std::all_of(digits.begin(), digits.end(), [hex](char c) {
                    return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : std::isdigit(static_cast<unsigned char>(c)) != 0;
                });
                const long code = well_formed ? std::stol(digits, nullptr, hex ? 16 : 10) : 0;  // at most 8 digits: no overflow
                if (code <= 0 || code > 0x10FFFF) fail("bad character reference '&" + entity + ";'");
                if (code < 0x80) {
                    out += static_cast<char>(code);
                } else if (code < 0x800) {
                    out += static_cast<char>(0xC0 | (code >> 6));
                    out += static_cast<char>(0x80 | (code & 0x3F));
                } else if (code < 0x10000) {
                    out += static_cast<char>(0xE0 | (code >> 12));
                    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                    out += static_cast<char>(0x80 | (code & 0x3F));
                } else {
                    out += static_cast<char>(0xF0 | (code >> 18));
                    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
                    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
                    out += static_cast<char>(0x80 | (code & 0x3F));
                }
            } else {
                fail("unknown entity '&" + entity + ";'");
            }
            i = end;
        }
        return out;
    }

    XmlElement element(int depth) {
        if (depth >= kMaxXmlDepth) fail("elements nested deeper than 64");
        if (++elements_ > kMaxXmlElements) fail("more than 100000 elements; not an annotation file");
        XmlElement e;
        e.line = line();
        ++pos_;  // '<'
        e.name = name();
        skip_attributes();
        if (at("/>")) {
            pos_ += 2;
            return e;
        }
        ++pos_;  // '>'
        while (true) {
            if (pos_ >= text_.size()) fail("<" + e.name + "> is never closed");
            if (at("</")) {
                pos_ += 2;
                const std::string closing = name();
                if (closing != e.name) fail("</" + closing + "> closes <" + e.name + ">");
                skip_space();
                if (!at(">")) fail("expected '>' after </" + closing);
                ++pos_;
                return e;
            }
            if (at("<!--")) {
                until("-->", "comment");
            } else if (at("<![CDATA[")) {
                pos_ += 9;
                e.text += until("]]>", "CDATA section");
            } else if (at("<?")) {
                until("?>", "processing instruction");
            } else if (at("<")) {
                e.children.push_back(element(depth + 1));
            } else {
                const std::size_t next = text_.find('<', pos_);
                const std::size_t end = next == std::string::npos ? text_.size() : next;
                e.text += decoded(text_.substr(pos_, end - pos_));
                pos_ = end;
            }
        }
    }

    const std::string& text_;
    const std::string& source_;
    std::size_t pos_ = 0;
    std::size_t counted_to_ = 0, counted_line_ = 1;
    std::size_t elements_ = 0;
};

double coordinate(const XmlElement& box, const char* name, const std::string& source) {
    const XmlElement* field = box.child(name);
    const std::string text = field ? trimmed(field->text) : "";
    if (text.empty())
        throw Error(source + ": the <bndbox> at line " + std::to_string(box.line) + " has no <" + name + ">");
    std::size_t used = 0;
    double value = NAN;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
    }
    if (used != text.size() || !std::isfinite(value))
        throw Error(source + ": <" + name + "> at line " + std::to_string(field->line) + " is not a number: '" + text + "'");
    if (std::fabs(value) > kMaxCoordinate)
        throw Error(source + ": <" + name + "> at line " + std::to_string(field->line) + " is out of any image: '" + text + "'");
    return value;
}

int size_field(const XmlElement* size, const char* name) {
    const XmlElement* field = size ? size->child(name) : nullptr;
    if (!field) return 0;
    try {
        return std::max(0, std::stoi(trimmed(field->text)));
    } catch (const std::exception&) {
        return 0;  // informative only: boxes are checked against the decoded image
    }
}

// A label becomes a folder name, so it must be one path component that is not hidden.
bool usable_label(const std::string& label) {
    if (label.empty() || label.size() > 128 || label[0] == '.') return false;
    return std::none_of(label.begin(), label.end(), [](char c) {
        return c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
    });
}

std::string read_text_file(const std::string& path) {
    std::error_code error;
    const auto size = fs::file_size(path, error);
    if (error) throw Error("'" + path + "': " + error.message());
    if (size > kMaxXmlBytes) throw Error("'" + path + "': larger than 16 MiB, not an annotation file");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in && !in.eof()) throw Error("'" + path + "': cannot be read");
    return text.str();
}

Image crop(const Image& image, int x0, int y0, int x1, int y1) {
    Image out{x1 - x0, y1 - y0, image.channels, {}};
    out.pixels.reserve(static_cast<std::size_t>(out.width) * out.height * out.channels);
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    for (int c = 0; c < image.channels; ++c)
        for (int y = y0; y < y1; ++y) {
            const float* row = image.pixels.data() + c * plane + static_cast<std::size_t>(y) * image.width;
            out.pixels.insert(out.pixels.end(), row + x0, row + x1);
        }
    return out;
}

}  // namespace

VocAnnotation parse_voc_annotation(const std::string& xml, const std::string& source) {
    const XmlElement root = XmlReader(xml, source).document();
    if (root.name != "annotation") throw Error(source + ": the root element is <" + root.name + ">, not <annotation>");
    VocAnnotation annotation;
    if (const XmlElement* filename = root.child("filename")) annotation.filename = trimmed(filename->text);
    annotation.width = size_field(root.child("size"), "width");
    annotation.height = size_field(root.child("size"), "height");
    for (const XmlElement& object : root.children) {
        if (object.name != "object") continue;
        const XmlElement* label = object.child("name");
        if (!label || trimmed(label->text).empty())
            throw Error(source + ": the <object> at line " + std::to_string(object.line) + " has no <name>");
        const XmlElement* box = object.child("bndbox");
        if (!box) throw Error(source + ": the <object> at line " + std::to_string(object.line) + " has no <bndbox>");
        annotation.boxes.push_back({trimmed(label->text), coordinate(*box, "xmin", source), coordinate(*box, "ymin", source),
                                    coordinate(*box, "xmax", source), coordinate(*box, "ymax", source)});
    }
    return annotation;
}

namespace {

// The regular files at any depth below folder. What cannot be read or resolved (a symbolic link loop, a folder
// without permission) is left out rather than ending the import.
std::vector<std::string> regular_files_below(const std::string& folder) {
    std::vector<std::string> files;
    std::error_code error;
    for (fs::recursive_directory_iterator it(folder, fs::directory_options::skip_permission_denied, error), end;
         !error && it != end; it.increment(error)) {
        std::error_code unresolved;
        if (it->is_regular_file(unresolved)) files.push_back(it->path().string());
    }
    if (error) throw Error("cannot list the folder '" + folder + "': " + error.message());
    return files;
}

}  // namespace

VocImportReport import_voc(const std::string& images_dir, const std::string& annotations_dir, const std::string& out_dir,
                           const VocImportOptions& options, const std::function<void(const std::string&)>& warn,
                           const std::function<void(std::size_t, std::size_t)>& progress) {
    if (options.pad < 0) throw Error("--pad must not be negative");
    if (options.min_size < 1) throw Error("--min-size must be at least 1 pixel");
    for (const auto& [dir, what] : {std::pair{images_dir, "image"}, std::pair{annotations_dir, "annotation"}})
        if (!fs::is_directory(dir)) throw Error(std::string(what) + " folder '" + dir + "' does not exist or is not a folder");
    std::error_code error;
    fs::create_directories(out_dir, error);
    if (error || !fs::is_directory(out_dir)) throw Error("cannot create the output folder '" + out_dir + "'");

    std::map<std::string, std::vector<std::string>> images_by_name;
    for (const std::string& path : regular_files_below(images_dir))
        images_by_name[fs::path(path).filename().string()].push_back(path);
    std::vector<std::string> xml_files;
    for (const std::string& path : regular_files_below(annotations_dir))
        if (fs::path(path).extension() == ".xml") xml_files.push_back(path);
    std::sort(xml_files.begin(), xml_files.end());
    if (xml_files.empty()) throw Error("annotation folder '" + annotations_dir + "' holds no .xml files");

    if (const bool is_empty = fs::is_empty(out_dir, error); !is_empty && !error)
        warn("the output folder '" + out_dir + "' is not empty; crops of earlier imports stay next to the new ones");
    VocImportReport report;
    std::map<std::string, std::size_t> per_label;
    std::set<std::string> written;
    // A problem of the data: with --strict the end of the import, else a warning saying what is skipped, counted.
    auto problem = [&](std::size_t& counter, const std::string& message, const std::string& skipped) {
        if (options.strict) throw Error(message);
        ++counter;
        warn(message + "; " + skipped);
    };
    for (std::size_t f = 0; f < xml_files.size(); ++f) {
        if (progress) progress(f, xml_files.size());
        const std::string& xml_path = xml_files[f];
        ++report.annotations;
        VocAnnotation annotation;
        try {
            annotation = parse_voc_annotation(read_text_file(xml_path), "'" + xml_path + "'");
        } catch (const Error& e) {
            problem(report.malformed_annotations, e.what(), "skipped");
            continue;
        }
        report.boxes += annotation.boxes.size();
        std::vector<std::string> candidates;
        if (!annotation.filename.empty()) candidates.push_back(fs::path(annotation.filename).filename().string());
        for (const char* extension : {".jpg", ".jpeg", ".png", ".bmp"})
            candidates.push_back(fs::path(xml_path).stem().string() + extension);
        const std::vector<std::string>* found = nullptr;
        for (const std::string& name : candidates)
            if (!found && images_by_name.count(name)) found = &images_by_name.at(name);
        if (!found) {
            problem(report.missing_images,
                    "'" + xml_path + "': its image '" + candidates.front() + "' is not under '" + images_dir + "'",
                    std::to_string(annotation.boxes.size()) + " boxes skipped");
            continue;
        }
        if (found->size() > 1) {
            problem(report.missing_images,
                    "'" + xml_path + "': its image name occurs " + std::to_string(found->size()) + " times under '" +
                        images_dir + "' (e.g. '" + found->front() + "'); which one is meant is unclear",
                    "its boxes are skipped");
            continue;
        }
        Image image;
        try {
            // PNG crops hold grey or RGB; an alpha channel is dropped as everywhere else in edgeqc.
            const Image decoded = decode_image_file(found->front());
            image = convert_channels(decoded, decoded.channels >= 3 ? 3 : 1);
        } catch (const Error& e) {
            problem(report.unreadable_images, e.what(), "its boxes are skipped");
            continue;
        }
        for (std::size_t b = 0; b < annotation.boxes.size(); ++b) {
            const VocBox& box = annotation.boxes[b];
            const std::string where = "'" + xml_path + "' box " + std::to_string(b + 1) + " (" + box.label + ")";
            if (!usable_label(box.label)) {
                problem(report.bad_labels, where + ": the label cannot be a folder name", "skipped");
                continue;
            }
            // VOC coordinates are 1-based and inclusive; crops are 0-based and half-open.
            const long x0 = std::lround(box.xmin) - 1, y0 = std::lround(box.ymin) - 1;
            const long x1 = std::lround(box.xmax), y1 = std::lround(box.ymax);
            const long cx0 = std::max(x0, 0L), cy0 = std::max(y0, 0L);
            const long cx1 = std::min(x1, static_cast<long>(image.width)), cy1 = std::min(y1, static_cast<long>(image.height));
            if (cx1 <= cx0 || cy1 <= cy0) {
                problem(report.boxes_outside, where + ": the box (" + std::to_string(x0 + 1) + "," + std::to_string(y0 + 1) +
                                                  ")-(" + std::to_string(x1) + "," + std::to_string(y1) +
                                                  ") is empty or outside the " + std::to_string(image.width) + "x" +
                                                  std::to_string(image.height) + " image",
                        "skipped");
                continue;
            }
            if (cx0 != x0 || cy0 != y0 || cx1 != x1 || cy1 != y1) {
                if (options.strict) throw Error(where + ": the box reaches outside the image");
                ++report.boxes_clipped;
                warn(where + ": the box reaches outside the " + std::to_string(image.width) + "x" +
                     std::to_string(image.height) + " image; clipped to it");
            }
            if (cx1 - cx0 < options.min_size || cy1 - cy0 < options.min_size) {
                ++report.boxes_too_small;  // the user's filter, not a problem of the data: counted, not warned
                continue;
            }
            const int px0 = static_cast<int>(std::max(cx0 - options.pad, 0L)), py0 = static_cast<int>(std::max(cy0 - options.pad, 0L));
            const int px1 = static_cast<int>(std::min(cx1 + options.pad, static_cast<long>(image.width)));
            const int py1 = static_cast<int>(std::min(cy1 + options.pad, static_cast<long>(image.height)));
            const fs::path folder = fs::path(out_dir) / box.label;
            fs::create_directories(folder, error);
            if (error) throw Error("cannot create the output folder '" + folder.string() + "': " + error.message());
            const std::string name = fs::path(found->front()).stem().string() + "_" + std::to_string(b + 1) + ".png";
            const std::string crop_path = (folder / name).string();
            if (!written.insert(crop_path).second) {  // e.g. a.jpg and a.png, or two XML files naming one image
                problem(report.name_collisions, where + ": its crop '" + crop_path + "' was already written by another box",
                        "skipped");
                continue;
            }
            write_png(crop_path, crop(image, px0, py0, px1, py1));
            ++report.crops_written;
            ++per_label[box.label];
        }
    }
    if (progress) progress(xml_files.size(), xml_files.size());
    report.crops_per_label.assign(per_label.begin(), per_label.end());
    return report;
}

}  // namespace edgeqc
