// Folder scanning for labelled datasets and the stratified split.
// Directory symlinks below a class folder are not followed, so a link loop cannot hang a scan.
#include "data/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "data/image.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace fs = std::filesystem;

namespace {

bool is_hidden(const fs::path& path) {
    const std::string name = path.filename().string();
    return !name.empty() && name.front() == '.';
}

[[noreturn]] void throw_unreadable(const fs::path& folder, const std::error_code& error) {
    throw Error("cannot read folder '" + folder.string() + "' (or a folder inside it): " + error.message() + ".");
}

// Adds the images below class_folder (sorted by path) to scan and returns how many there were.
std::size_t collect_class_images(const fs::path& class_folder, int label, FolderScan& scan) {
    std::vector<std::string> paths;
    std::error_code error;
    std::error_code type_unknown;  // e.g. a dangling link: treated as a file, the loader reports it if it is an image
    fs::recursive_directory_iterator it(class_folder, error);
    for (const fs::recursive_directory_iterator end; !error && it != end; it.increment(error)) {
        const fs::path& path = it->path();
        if (is_hidden(path)) {
            ++scan.skipped_hidden;
            if (it->is_directory(type_unknown)) it.disable_recursion_pending();
        } else if (it->is_directory(type_unknown)) {
            continue;
        } else if (has_image_extension(path)) {
            paths.push_back(path.string());
        } else {
            ++scan.skipped_non_image;
        }
    }
    if (error) throw_unreadable(class_folder, error);
    std::sort(paths.begin(), paths.end());
    for (std::string& path : paths) scan.images.push_back({std::move(path), label});
    return paths.size();
}

void require_folder(const std::string& root) {
    std::error_code error;
    const fs::file_status status = fs::status(root, error);
    if (!fs::exists(status)) throw Error("dataset folder '" + root + "' does not exist.");
    if (!fs::is_directory(status)) throw Error("dataset path '" + root + "' is not a folder.");
}

}  // namespace

FolderScan scan_image_folder(const std::string& root) {
    require_folder(root);
    FolderScan scan;
    collect_class_images(root, 0, scan);
    return scan;
}

FolderScan scan_labelled_folder(const std::string& root) {
    require_folder(root);
    std::error_code error;

    FolderScan scan;
    std::error_code type_unknown;
    fs::directory_iterator it(root, error);
    for (const fs::directory_iterator end; !error && it != end; it.increment(error)) {
        if (is_hidden(it->path())) {
            ++scan.skipped_hidden;
        } else if (it->is_directory(type_unknown)) {
            scan.class_names.push_back(it->path().filename().string());
        } else {
            ++scan.skipped_non_image;
        }
    }
    if (error) throw_unreadable(root, error);
    if (scan.class_names.empty()) {
        throw Error("dataset folder '" + root +
                    "' has no class subfolders; put the images of each class in a subfolder named after the class.");
    }
    std::sort(scan.class_names.begin(), scan.class_names.end());
    for (std::size_t label = 0; label < scan.class_names.size(); ++label) {
        scan.class_counts.push_back(
            collect_class_images(fs::path(root) / scan.class_names[label], static_cast<int>(label), scan));
    }
    return scan;
}

void require_trainable(const FolderScan& scan, const std::string& root) {
    if (scan.class_names.size() < 2) {
        const std::string found = scan.class_names.empty() ? "none" : "only '" + scan.class_names.front() + "'";
        throw Error("dataset folder '" + root + "' needs at least two class folders to train on, but found " + found +
                    ".");
    }
    for (std::size_t label = 0; label < scan.class_names.size(); ++label) {
        if (label >= scan.class_counts.size() || scan.class_counts[label] == 0) {
            throw Error("class folder '" + (fs::path(root) / scan.class_names[label]).string() +
                        "' contains no images (png, jpg, jpeg, bmp, pgm, ppm or pnm).");
        }
    }
}

FolderScan scan_with_classes(const std::string& root, const std::vector<std::string>& model_classes) {
    FolderScan on_disk = scan_labelled_folder(root);
    std::vector<int> model_label_of(on_disk.class_names.size());
    for (std::size_t label = 0; label < on_disk.class_names.size(); ++label) {
        const auto found = std::find(model_classes.begin(), model_classes.end(), on_disk.class_names[label]);
        if (found == model_classes.end()) {
            std::string known;
            for (const std::string& name : model_classes) known += (known.empty() ? "'" : ", '") + name + "'";
            throw Error("folder '" + (fs::path(root) / on_disk.class_names[label]).string() +
                        "' is not one of the model's classes (" + (known.empty() ? "none" : known) + ").");
        }
        model_label_of[label] = static_cast<int>(found - model_classes.begin());
    }

    FolderScan scan;
    scan.class_names = model_classes;
    scan.class_counts.assign(model_classes.size(), 0);
    scan.skipped_hidden = on_disk.skipped_hidden;
    scan.skipped_non_image = on_disk.skipped_non_image;
    scan.images = std::move(on_disk.images);
    for (LabelledImage& image : scan.images) {
        image.label = model_label_of[static_cast<std::size_t>(image.label)];
        ++scan.class_counts[static_cast<std::size_t>(image.label)];
    }
    // Stable: within a class the images keep their path order from the scan.
    std::stable_sort(scan.images.begin(), scan.images.end(),
                     [](const LabelledImage& a, const LabelledImage& b) { return a.label < b.label; });
    return scan;
}

Split stratified_split(const std::vector<LabelledImage>& images, int num_classes, double validation_fraction) {
    if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
        throw Error("the validation fraction must be at least 0 and below 1, but is " +
                    std::to_string(validation_fraction) + ".");
    }
    if (num_classes < 1) throw Error("a split needs at least one class, but got " + std::to_string(num_classes) + ".");
    std::vector<std::size_t> seen_in_class(static_cast<std::size_t>(num_classes), 0);
    Split split;
    for (const LabelledImage& image : images) {
        if (image.label < 0 || image.label >= num_classes) {
            throw Error("image '" + image.path + "' has label " + std::to_string(image.label) + ", outside the " +
                        std::to_string(num_classes) + " classes.");
        }
        const auto i = static_cast<double>(seen_in_class[static_cast<std::size_t>(image.label)]++);
        const bool to_validation = std::floor((i + 1) * validation_fraction) > std::floor(i * validation_fraction);
        (to_validation ? split.validation : split.train).push_back(image);
    }
    return split;
}

}  // namespace edgeqc
