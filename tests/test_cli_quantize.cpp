// `edgeqc quantize` and `eval --compare` end to end on generated data: the int8 model it writes runs in eval,
// predict and edgeqc-infer; its reports; and every bad input (empty or corrupt calibration folders, unknown layer
// names, a model quantized already, damaged int8 files, unwritable outputs) ends in one clear message.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cstring>

#include "engine/model_file.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

// A trained float model of the tiny synthetic set, and the set.
struct Trained {
    TempFolder folder;
    std::string data, model;
    Trained() {
        data = folder.file("train");
        model = folder.file("m.eqc");
        REQUIRE(run_edgeqc("synth " + shell_quoted(data) + " --per-class 8 --size 16x20 --seed 3").exit_code == 0);
        REQUIRE(run_edgeqc("train " + shell_quoted(data) + " --out " + shell_quoted(model) +
                           " --arch c4bn-p-c8bn-p-fc6-fc --size 16x20 --epochs 2 --batch 8 --threads 2")
                    .exit_code == 0);
    }
};

}  // namespace

TEST_CASE("cli quantize: an int8 model that eval, predict and edgeqc-infer run, compared with its float original") {
    Trained t;
    const std::string int8 = t.folder.file("m8.eqc"), report = t.folder.file("q.html");
    const CommandResult q = run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(int8) +
                                       " --images 30 --report " + shell_quoted(report));
    INFO(q.output);
    REQUIRE(q.exit_code == 0);
    for (const char* words : {"conv1", "conv2", "fc1", "fc2", "int8", "top-1 agreement", "int8 model written"})
        CHECK(q.output.find(words) != std::string::npos);
    const LoadedModel loaded = load_model(int8);
    CHECK(loaded.activations.size() == 3);  // the first layer stays float by default
    CHECK(read_bytes(report).size() > 1000);

    const CommandResult compared = run_edgeqc("eval " + shell_quoted(int8) + " " + shell_quoted(t.data) + " --compare " + shell_quoted(t.model) + " --json 2>/dev/null");
    INFO(compared.output);
    REQUIRE(compared.exit_code == 0);
    const nlohmann::json c = nlohmann::json::parse(compared.output).at("compare");
    CHECK(c.at("images") == 40);
    CHECK(c.at("top1_agreement").get<double>() >= 0.9);
    CHECK(std::abs(c.at("accuracy_delta").get<double>()) <= 0.1);
    const CommandResult text = run_edgeqc("eval " + shell_quoted(int8) + " " + shell_quoted(t.data) + " --compare " + shell_quoted(t.model));
    CHECK(text.output.find("top-1 agreement") != std::string::npos);

    const std::string image = shell_quoted(t.data + "/crack/crack_0000.png");
    const CommandResult predicted = run_edgeqc("predict " + shell_quoted(int8) + " " + image);
    const CommandResult inferred = run_edgeqc_infer(shell_quoted(int8) + " " + image);
    CHECK(predicted.exit_code == 0);
    CHECK(inferred.exit_code == 0);
    CHECK(predicted.output == inferred.output);

    // JSON, mixed precision by name, and the same seed giving the same file.
    const CommandResult json = run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " +
                                          shell_quoted(t.folder.file("k.eqc")) + " --keep-fp32 conv1,fc2 --json 2>/dev/null");
    INFO(json.output);
    REQUIRE(json.exit_code == 0);
    const nlohmann::json result = nlohmann::json::parse(json.output);
    CHECK(result.at("layers").size() == 4);
    CHECK(result.at("layers")[0].at("int8") == false);
    CHECK(result.at("layers")[1].at("int8") == true);
    CHECK(result.at("layers")[3].at("int8") == false);
    CHECK(load_model(t.folder.file("k.eqc")).activations.size() == 2);
    REQUIRE(run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(t.folder.file("k2.eqc")) +
                       " --keep-fp32 conv1,fc2").exit_code == 0);
    CHECK(read_bytes(t.folder.file("k.eqc")) == read_bytes(t.folder.file("k2.eqc")));
    // none: every layer in int8.
    REQUIRE(run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(t.folder.file("n.eqc")) +
                       " --keep-fp32 none").exit_code == 0);
    CHECK(load_model(t.folder.file("n.eqc")).activations.size() == 4);
}

TEST_CASE("cli quantize: auto keeps layers in float until the agreement target, and reports each one's sensitivity") {
    Trained t;
    const CommandResult q = run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " +
                                       shell_quoted(t.folder.file("a.eqc")) + " --keep-fp32 auto --agreement 1 --json 2>/dev/null");
    INFO(q.output);
    REQUIRE(q.exit_code == 0);
    const nlohmann::json result = nlohmann::json::parse(q.output);
    // Every layer measured alone; the target met, unless every layer but one went float trying.
    for (const auto& layer : result.at("layers")) {
        CHECK(layer.at("sensitivity").get<double>() >= 0.0);
        CHECK(layer.at("logit_error").get<double>() >= 0.0);
    }
    const auto& layers = result.at("layers");
    const auto in_float = std::count_if(layers.begin(), layers.end(), [](const auto& l) { return l.at("int8") == false; });
    CHECK((result.at("agreement_target_met") == true) == (result.at("top1_agreement").get<double>() >= 1.0));
    if (result.at("agreement_target_met") == false) CHECK(in_float == 3);
    // Without auto nothing is measured per layer.
    const CommandResult plain = run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " +
                                           shell_quoted(t.folder.file("p.eqc")) + " --json 2>/dev/null");
    CHECK(nlohmann::json::parse(plain.output).at("layers")[0].at("sensitivity").is_null());
}

TEST_CASE("cli quantize: bad calibration folders, layer names, models and outputs give one clear error") {
    Trained t;
    const std::string out = " --out " + shell_quoted(t.folder.file("o.eqc"));
    const auto error_of = [&](const std::string& arguments) {
        const CommandResult r = run_edgeqc(arguments);
        CHECK(r.exit_code != 0);
        return r.output;
    };
    fs::create_directories(t.folder.file("empty"));
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.folder.file("empty")) + out).find("no image") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.folder.file("missing")) + out).find("does not exist") != std::string::npos);
    write_bytes(t.folder.file("corrupt/a.png"), {0x89, 'P', 'N', 'G', 0, 1, 2});
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.folder.file("corrupt")) + out).find("could be decoded") != std::string::npos);
    // Corrupt images among good ones are skipped and counted.
    write_bytes(t.data + "/crack/zz_corrupt.png", {0x89, 'P', 'N', 'G', 0, 1, 2});
    const CommandResult skipped = run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --json 2>/dev/null");
    REQUIRE(skipped.exit_code == 0);
    CHECK(nlohmann::json::parse(skipped.output).at("skipped_images") == 1);
    fs::remove(t.data + "/crack/zz_corrupt.png");
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --keep-fp32 conv7").find("conv1, conv2, fc1, fc2") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --method kld").find("--method") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --images 0").find("--images") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(t.folder.str() + "/no/such/o.eqc")).find("does not exist") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --report " + shell_quoted(t.folder.file("o.eqc"))).find("same file") != std::string::npos);

    // An int8 model: quantizing it again, and damaged copies of it.
    const std::string int8 = t.folder.file("m8.eqc");
    REQUIRE(run_edgeqc("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(int8)).exit_code == 0);
    CHECK(error_of("quantize " + shell_quoted(int8) + " " + shell_quoted(t.data) + out).find("already quantized") != std::string::npos);
    CHECK(error_of("quantize " + shell_quoted(t.model) + " " + shell_quoted(t.data) + out + " --keep-fp32 conv1,conv2,fc1,fc2")
              .find("nothing would be quantized") != std::string::npos);
    // Training starts only from float models: an int8 one's weights cannot be trained on.
    CHECK(error_of("train " + shell_quoted(t.data) + " --out " + shell_quoted(t.folder.file("again.eqc")) + " --init " +
                   shell_quoted(int8) + " --epochs 1")
              .find("int8 model") != std::string::npos);
    std::vector<unsigned char> bytes = read_bytes(int8);
    write_bytes(t.folder.file("truncated.eqc"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2)));
    CHECK(error_of("eval " + shell_quoted(t.folder.file("truncated.eqc")) + " " + shell_quoted(t.data)).find("truncated") != std::string::npos);
    bytes[bytes.size() / 2] ^= 0x10;
    write_bytes(t.folder.file("flipped.eqc"), bytes);
    CHECK(error_of("eval " + shell_quoted(t.folder.file("flipped.eqc")) + " " + shell_quoted(t.data)).find("checksum") != std::string::npos);
    // Zero, negative, NaN or infinite activation scales with a valid checksum are refused at load.
    for (const float bad : {0.0f, -1.0f, std::nanf(""), INFINITY}) {
        LoadedModel model = load_model(int8);
        model.activations[1].scale = bad;
        std::string error;
        try {
            save_model(t.folder.file("bad.eqc"), model);
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) continue;  // the writer may refuse it already
        CHECK(error_of("eval " + shell_quoted(t.folder.file("bad.eqc")) + " " + shell_quoted(t.data)).find("activation scale") != std::string::npos);
    }
}
