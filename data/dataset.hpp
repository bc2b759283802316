// Labelled image folders (root/<class>/**/image) and the deterministic train/validation split.
// Deliberately no decoding here: a scan only lists files, so corrupt images surface in the loader.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace edgeqc {

struct LabelledImage {
    std::string path;
    int label = 0;
};

struct FolderScan {
    std::vector<std::string> class_names;  // sorted subfolder names (or the model's classes, in its order)
    std::vector<std::size_t> class_counts;  // images per class (may be 0)
    std::vector<LabelledImage> images;      // sorted by class, then by the byte order of the path
    std::size_t skipped_hidden = 0;         // files and folders whose name starts with '.'
    std::size_t skipped_non_image = 0;      // other extensions, and files directly in the root (they have no class)
};

// The class of an image is the immediate subfolder of root it lies in, at any depth below it.
// Throws Error for a missing, unreadable or non-folder root, and for a root without class subfolders.
FolderScan scan_labelled_folder(const std::string& root);

// Throws Error unless there are at least two classes and every class folder holds an image.
void require_trainable(const FolderScan& scan, const std::string& root);

// For evaluation against a trained model: labels follow model_classes; a folder that is not a model
// class is an Error, a model class without a folder just counts 0.
FolderScan scan_with_classes(const std::string& root, const std::vector<std::string>& model_classes);

// Every image below root at any depth (label 0, no classes): the unlabelled images of pseudo-labelling.
// Throws Error for a missing or unreadable root.
FolderScan scan_image_folder(const std::string& root);

struct Split {
    std::vector<LabelledImage> train, validation;
};

// Seed-independent, so the Python reference can reproduce it: within each class, in the given order,
// image i goes to validation iff floor((i + 1) * f) > floor(i * f). Both halves keep the input order.
Split stratified_split(const std::vector<LabelledImage>& images, int num_classes, double validation_fraction);

}  // namespace edgeqc
