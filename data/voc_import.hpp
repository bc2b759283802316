// Pascal VOC (LabelImg) annotation import: parses the XML and crops every box into a labelled-folder
// dataset OUT/<label>/ that `edgeqc train` reads. Deliberately only the VOC subset LabelImg writes: no
// segmentation masks, no DTD, no namespaces.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace edgeqc {

struct VocBox {
    std::string label;
    double xmin = 0, ymin = 0, xmax = 0, ymax = 0;  // VOC pixel indices: 1-based, inclusive
};

struct VocAnnotation {
    std::string filename;   // as written in <filename>; may be empty
    int width = 0, height = 0;  // from <size>; 0 when absent
    std::vector<VocBox> boxes;
};

// Parses one annotation document. Throws Error naming `source` and the line for malformed XML (unclosed or
// mismatched tags, bad entities, nesting deeper than 64, more than 16 MiB) and for VOC content that cannot be
// used (no <annotation> root, an <object> without <name> or a complete <bndbox>, a non-numeric coordinate or
// one beyond 10^7).
VocAnnotation parse_voc_annotation(const std::string& xml, const std::string& source);

struct VocImportOptions {
    int pad = 0;       // pixels added on every side of a box (clipped to the image)
    int min_size = 1;  // boxes narrower or lower than this (in pixels) are skipped
    bool strict = false;  // the first problem is an Error instead of a counted, logged skip
};

struct VocImportReport {
    std::size_t annotations = 0, boxes = 0, crops_written = 0;
    std::size_t malformed_annotations = 0, missing_images = 0, unreadable_images = 0;
    std::size_t boxes_outside = 0, boxes_clipped = 0, boxes_too_small = 0, bad_labels = 0, name_collisions = 0;
    std::vector<std::pair<std::string, std::size_t>> crops_per_label;  // sorted by label
};

// Reads every *.xml under annotations_dir, finds each image by its <filename> (or, without one, by the XML's
// name with a .jpg/.jpeg/.png/.bmp extension) anywhere under images_dir, and writes
// out_dir/<label>/<image stem>_<box number>.png. Problems go to `warn` one line each and are counted.
// Throws Error for a missing folder, an unwritable output, or in strict mode the first problem.
VocImportReport import_voc(const std::string& images_dir, const std::string& annotations_dir, const std::string& out_dir,
                           const VocImportOptions& options, const std::function<void(const std::string&)>& warn,
                           const std::function<void(std::size_t done, std::size_t total)>& progress = {});

}  // namespace edgeqc
