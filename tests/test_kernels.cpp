// Every fast kernel of every table this CPU can run, checked against the scalar reference on odd shapes.
//
// How to add a kernel: write its generic body in engine/kernels/<op>_<type>.hpp and a scalar reference beside
// it, instantiate it per arch in <op>_<type>_<arch>.cpp, list the source in engine/CMakeLists.txt
// (EDGEQC_SIMD_KERNELS), give KernelTable a member for it and add its lines to the kernel list in
// engine/kernels.cpp (op, data type, arch, CPU check, install). A new op then gets a test case here that runs it
// through for_each_fast_table() on shapes that hit the SIMD tails (13 channels, prime sizes, batch 1 and 33) and
// compares with reference_kernels() using the named tolerances below; a new arch of an existing op is tested by
// being listed.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/conv2d_f32.hpp"
#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/tensor.hpp"
#include "optim/training_kernels.hpp"
#include "engine/rng.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using edgeqc::testing::cpu_runs_bf16_products;

namespace {

// |fast - reference| <= kAbsolute + kRelative * |reference|: the fast kernels sum in float in another order,
// the reference in double.
constexpr double kGemmAbsoluteTolerance = 1e-4;
constexpr double kGemmRelativeTolerance = 1e-4;

std::vector<float> normal_values(std::size_t n, Rng& rng) {
    std::vector<float> values(n);
    for (float& v : values) v = rng.normal();
    return values;
}

// Runs body(table) for every table except the reference itself.
template <class Body>
void for_each_fast_table(Body body) {
    for (const KernelTable* table : available_kernel_tables()) {
        if (table->name == reference_kernels().name) continue;
        const std::string table_name = table->name;
        CAPTURE(table_name);
        body(*table);
    }
}

// A band after a kernel's workspace that it must not write: the sizes the table reports are the sizes it uses.
constexpr std::size_t kGuardFloats = 64;
constexpr float kGuardValue = -12345.0f;

// The workspace a table's GEMM of these sizes needs (A not prepacked).
AlignedFloats gemm_workspace(const KernelTable& table, int m, int n, int k) {
    return AlignedFloats(table.gemm_workspace_f32(m, n, k, false));
}

struct GemmCase {
    int m, n, k;
    bool transpose_a, transpose_b;
    float alpha, beta;
    bool bias, relu;
};

// Checks one GEMM case with padded leading dimensions (so row strides differ from widths) against the reference
// table's, through both GEMM entry points of the table.
void check_gemm(const KernelTable& table, const GemmCase& t, Rng& rng,
                const KernelTable& reference = reference_kernels()) {
    CAPTURE(t.m);
    CAPTURE(t.n);
    CAPTURE(t.k);
    CAPTURE(t.transpose_a);
    CAPTURE(t.transpose_b);
    CAPTURE(t.beta);
    const int lda = (t.transpose_a ? t.m : t.k) + 3, ldb = (t.transpose_b ? t.k : t.n) + 5, ldc = t.n + 2;
    const std::vector<float> a = normal_values(static_cast<std::size_t>(lda) * (t.transpose_a ? t.k : t.m), rng);
    const std::vector<float> b = normal_values(static_cast<std::size_t>(ldb) * (t.transpose_b ? t.n : t.k), rng);
    const std::vector<float> bias = normal_values(static_cast<std::size_t>(t.m), rng);
    const std::vector<float> initial_c = normal_values(static_cast<std::size_t>(ldc) * t.m, rng);
    std::vector<float> expected = initial_c;
    const GemmEpilogue epilogue{t.bias ? bias.data() : nullptr, t.relu};
    reference.gemm_f32(t.transpose_a, t.transpose_b, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta,
                       expected.data(), ldc, epilogue, nullptr);
    // Both entry points: A packed on the fly, and A packed once beforehand.
    for (const bool prepacked : {false, true}) {
        CAPTURE(prepacked);
        std::vector<float> actual = initial_c;
        if (t.beta == 0.0f)  // C must not be read when beta is 0: garbage in it must not leak out
            for (float& v : actual) v = std::numeric_limits<float>::quiet_NaN();
        // Exactly the workspace the table asks for, then a guard band that must stay untouched.
        const std::size_t workspace_floats = table.gemm_workspace_f32(t.m, t.n, t.k, prepacked);
        AlignedFloats workspace(workspace_floats + kGuardFloats, kGuardValue);
        if (prepacked) {
            std::vector<float> packed(table.gemm_pack_a_f32(t.transpose_a, t.m, t.k, a.data(), lda, nullptr));
            table.gemm_pack_a_f32(t.transpose_a, t.m, t.k, a.data(), lda, packed.data());
            table.gemm_packed_a_f32(t.transpose_b, t.m, t.n, t.k, t.alpha, packed.data(), b.data(), ldb, t.beta,
                                    actual.data(), ldc, epilogue, workspace.data());
        } else {
            table.gemm_f32(t.transpose_a, t.transpose_b, t.m, t.n, t.k, t.alpha, a.data(), lda, b.data(), ldb, t.beta,
                           actual.data(), ldc, epilogue, workspace.data());
        }
        CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_floats), workspace.end(),
                          [](float v) { return v == kGuardValue; }));
        int mismatches = 0;
        for (int i = 0; i < t.m; ++i)
            for (int j = 0; j < t.n; ++j) {
                const double want = expected[static_cast<std::size_t>(i) * ldc + j];
                const double got = actual[static_cast<std::size_t>(i) * ldc + j];
                // The magnitude of a dot product of length k grows like sqrt(k): scale the absolute part with it.
                const double tolerance =
                    kGemmAbsoluteTolerance * std::sqrt(t.k + 1.0) + kGemmRelativeTolerance * std::abs(want);
                if (!(std::abs(got - want) <= tolerance) && mismatches++ < 5)
                    FAIL_CHECK("C[" << i << "][" << j << "] = " << got << ", reference " << want);
            }
        CHECK(mismatches == 0);
        // Padding between rows of C is outside the product and must be left alone.
        for (int i = 0; i < t.m; ++i)
            for (int j = t.n; j < ldc; ++j) {
                const std::size_t index = static_cast<std::size_t>(i) * ldc + j;
                if (t.beta != 0.0f) CHECK(actual[index] == expected[index]);
                else CHECK(std::isnan(actual[index]));
            }
    }
}

// Every transpose, alpha and beta, bias and ReLU on sizes around the register tile (6, 8, 12 or 32 rows, 16, 12 or 32
// columns), the row block (144), the depth block (256; 576 with A packed on AVX-512; odd depths leave a bf16 pair half
// empty) and the column block (about 4096, two and more of them, threaded and not), plus the reference network's
// shapes.
void check_gemm_cases(const KernelTable& table, Rng& rng, const KernelTable& reference = reference_kernels()) {
    const int sizes[][3] = {{1, 1, 1},    {13, 17, 29}, {6, 16, 256}, {7, 33, 257},   {145, 31, 5},   {32, 300, 9},
                            {64, 97, 288}, {5, 4103, 3}, {3, 8200, 2}, {32, 8200, 17}, {289, 19, 520}, {1, 1, 700},
                            {25, 70, 577}, {14, 33, 1153}};
    for (const auto& size : sizes)
        for (const bool transpose_a : {false, true})
            for (const bool transpose_b : {false, true})
                check_gemm(table, {size[0], size[1], size[2], transpose_a, transpose_b, 0.5f, 2.0f, false, false}, rng,
                           reference);
    for (const auto& size : sizes) {
        check_gemm(table, {size[0], size[1], size[2], false, false, 1.0f, 0.0f, true, true}, rng, reference);
        check_gemm(table, {size[0], size[1], size[2], true, true, 0.5f, 2.0f, true, true}, rng, reference);
        check_gemm(table, {size[0], size[1], size[2], true, false, 1.0f, 1.0f, true, false}, rng, reference);
        check_gemm(table, {size[0], size[1], size[2], false, true, 1.0f, 0.0f, false, true}, rng, reference);
    }
}

}  // namespace

TEST_CASE("GEMM: every table matches the reference on tails, transposes, blocking edges and the epilogue") {
    Rng rng(12);
    for_each_fast_table([&](const KernelTable& table) { check_gemm_cases(table, rng); });
}

TEST_CASE("GEMM: thin products (few columns, many rows) match the reference on every table") {
    Rng rng(19);
    // 519 rows (several panels of the narrow tile's 12 to 32) take the thin path; columns around its tile (6, 8 or
    // 12) up to its limit of 160, depths around the depth block and its vectors.
    for_each_fast_table([&](const KernelTable& table) {
        for (const int n : {1, 11, 12, 13, 35, 36, 64, 150, 160})
            for (const int k : {1, 17, 256, 257, 700}) {
                check_gemm(table, {519, n, k, false, false, 1.0f, 0.0f, true, true}, rng);
                check_gemm(table, {519, n, k, true, false, 0.5f, 2.0f, false, true}, rng);
                check_gemm(table, {519, n, k, false, false, 1.0f, 1.0f, true, false}, rng);
            }
        // Products of one panel or a little more (16 to 32 rows take the route on AVX-512).
        for (const int m : {17, 31})
            for (const int k : {257, 700}) {
                check_gemm(table, {m, 35, k, false, false, 1.0f, 0.0f, true, true}, rng);
                check_gemm(table, {m, 150, k, true, false, 0.5f, 2.0f, false, true}, rng);
            }
    });
}

TEST_CASE("GEMM: the same bits on any number of threads, thin and packed products alike (training's --seed promise)") {
    Rng rng(23);
    const int caller_threads = omp_get_max_threads();
    // Thin (few columns) and packed (wide) products, each deeper than one depth block, on 1 to 4 threads: the routes
    // and their summation orders must not follow the thread count. (Not 5: in the sanitize build clang's libomp then
    // leaves allocations that LeakSanitizer reports as leaks.)
    const int shapes[][3] = {{64, 35, 700}, {519, 150, 513}, {97, 300, 600}, {33, 20, 300}};
    for_each_fast_table([&](const KernelTable& table) {
        for (const auto& shape : shapes) {
            const int m = shape[0], n = shape[1], k = shape[2];
            CAPTURE(m);
            CAPTURE(n);
            const std::vector<float> a = normal_values(static_cast<std::size_t>(m) * k, rng);
            const std::vector<float> b = normal_values(static_cast<std::size_t>(k) * n, rng);
            AlignedFloats workspace = gemm_workspace(table, m, n, k);
            std::vector<float> first;
            for (int threads = 1; threads <= 4; ++threads) {
                omp_set_num_threads(threads);
                std::vector<float> c(static_cast<std::size_t>(m) * n);
                table.gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n, {},
                               workspace.data());
                if (first.empty()) first = c;
                else CHECK(std::memcmp(first.data(), c.data(), c.size() * sizeof(float)) == 0);
            }
        }
    });
    omp_set_num_threads(caller_threads);
}

TEST_CASE("GEMM with bf16 products: every training table matches the bf16 reference; both round to nearest even") {
    const KernelTable reference = with_bf16_products(reference_kernels(), reference_training_kernels());
    // Exact cases, 1 x 1 x 1: 1 + 2^-8 lies halfway between two bf16 values and goes to the even one, 1; 1 + 3 * 2^-8
    // lies halfway too and goes up to the even 1 + 2^-6; 3 rounds to itself.
    const auto product_sum = [](const KernelTable& table, const std::vector<float>& a, const std::vector<float>& b) {
        const int k = static_cast<int>(a.size());
        float c = 0.0f;
        AlignedFloats workspace(table.gemm_workspace_f32(1, 1, k, false) + 1);
        table.gemm_f32(false, false, 1, 1, k, 1.0f, a.data(), k, b.data(), 1, 0.0f, &c, 1, {}, workspace.data());
        return c;
    };
    const auto product = [&](const KernelTable& table, float a, float b) { return product_sum(table, {a}, {b}); };
    Rng rng(13);
    std::vector<GemmF32> tested;  // the tables of arches without a bf16 GEMM of their own share another arch's
    for (const TrainingKernelTable* training : available_training_kernel_tables()) {
        if (std::find(tested.begin(), tested.end(), training->gemm_bf16) != tested.end()) continue;
        tested.push_back(training->gemm_bf16);
        const KernelTable table = with_bf16_products(reference_kernels(), *training);
        CAPTURE(table.name);
        CHECK(product(table, 1.0f + 1.0f / 256, 3.0f) == 3.0f);
        CHECK(product(table, 1.0f + 3.0f / 256, 3.0f) == 3.0f * (1.0f + 1.0f / 64));
        CHECK(product(table, -0.5f, 1.0f + 1.0f / 128) == -0.5f * (1.0f + 1.0f / 128));
        if (training->gemm_bf16 != reference.gemm_f32) check_gemm_cases(table, rng, reference);
    }
    if (!cpu_runs_bf16_products())
        MESSAGE("no bf16 GEMM but the reference on this CPU (it lacks AVX-512 BF16): only the reference was tested");
    // The comparison above can fail: an f32 GEMM misses the bf16 reference far beyond its tolerance. 64 products of
    // 1 + 2^-9 (which rounds to 1 in bf16) and 1 sum to 64.125 in f32 and to 64 in bf16.
    const std::vector<float> a(64, 1.0f + 1.0f / 512), b(64, 1.0f);
    const float f32_sum = product_sum(reference_kernels(), a, b), bf16_sum = product_sum(reference, a, b);
    CHECK(bf16_sum == 64.0f);
    CHECK(f32_sum - bf16_sum > 10 * (kGemmAbsoluteTolerance * std::sqrt(65.0) + kGemmRelativeTolerance * 64));
}

TEST_CASE("bf16 training's kernel table: the active table with the bf16-product GEMMs, following the arch") {
    const std::string original = kernels().name;
    if (!cpu_runs_bf16_products() && original != "scalar") {
        CHECK_THROWS_WITH_AS(bf16_product_kernels(), doctest::Contains("needs a CPU with AVX-512 BF16"), Error);
        select_kernels("scalar");  // chosen on purpose: the reference computes the products, slowly but allowed
    }
    const KernelTable& table = bf16_product_kernels();
    const bool bf16_gemms = table.gemm_f32 == training_kernels().gemm_bf16 &&
                            table.gemm_packed_a_f32 == training_kernels().gemm_packed_a_bf16;
    CHECK(bf16_gemms);
    const bool other_ops_kept = table.max_pool_2x2_f32 == kernels().max_pool_2x2_f32;
    CHECK(other_ops_kept);
    CHECK(table.name.find("bf16") != std::string::npos);
    select_kernels("scalar");
    const bool scalar_products = bf16_product_kernels().gemm_f32 == reference_training_kernels().gemm_bf16;
    CHECK(scalar_products);
    select_kernels(original);
}

TEST_CASE("GEMM: threads never repack panels others still read (short last depth block, several column blocks)") {
    // The shapes where a thread that runs ahead reaches packed panels another may still read: a last depth block
    // shorter than the others (k = 1152 is 4 x 231 + 228), several column blocks with a narrower last one (the
    // first conv at 80x120: n = 9600), each with A prepacked (no barrier in the depth loop). More threads than
    // cores make the threads fall out of step, and the repetitions give a race its chances.
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(4);
    Rng rng(21);
    for_each_fast_table([&](const KernelTable& table) {
        for (int repeat = 0; repeat < 8; ++repeat) {
            check_gemm(table, {32, 9600, 9, false, false, 1.0f, 0.0f, true, true}, rng);
            check_gemm(table, {64, 784, 1152, false, false, 1.0f, 0.0f, true, false}, rng);
            check_gemm(table, {16, 8300, 40, false, false, 1.0f, 0.0f, false, true}, rng);
        }
    });
    omp_set_num_threads(caller_threads);
}

TEST_CASE("GEMM: a workspace sized for a product serves every smaller one (a batch's narrower last chunk)") {
    // Depths whose even cut into blocks is deeper for the smaller product (250 in one block; 1152 as 5 x 231).
    Rng rng(5);
    for_each_fast_table([&](const KernelTable& table) {
        for (const bool prepacked : {false, true}) {
            const int m = 37, n = 70, big_k = 1152, small_k = 250;
            const std::size_t floats = table.gemm_workspace_f32(m, n, big_k, prepacked);
            CHECK(table.gemm_workspace_f32(m, n, small_k, prepacked) <= floats);
            AlignedFloats workspace(floats + kGuardFloats, kGuardValue);
            const std::vector<float> a = normal_values(static_cast<std::size_t>(m) * small_k, rng);
            const std::vector<float> b = normal_values(static_cast<std::size_t>(small_k) * n, rng);
            std::vector<float> expected(static_cast<std::size_t>(m) * n), actual(expected.size());
            reference_kernels().gemm_f32(false, false, m, n, small_k, 1.0f, a.data(), small_k, b.data(), n, 0.0f,
                                         expected.data(), n, {}, nullptr);
            if (prepacked) {
                std::vector<float> packed(table.gemm_pack_a_f32(false, m, small_k, a.data(), small_k, nullptr));
                table.gemm_pack_a_f32(false, m, small_k, a.data(), small_k, packed.data());
                table.gemm_packed_a_f32(false, m, n, small_k, 1.0f, packed.data(), b.data(), n, 0.0f,
                                        actual.data(), n, {}, workspace.data());
            } else {
                table.gemm_f32(false, false, m, n, small_k, 1.0f, a.data(), small_k, b.data(), n, 0.0f,
                               actual.data(), n, {}, workspace.data());
            }
            CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(floats), workspace.end(),
                              [](float v) { return v == kGuardValue; }));
            for (std::size_t i = 0; i < expected.size(); ++i)
                CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-4).scale(std::sqrt(small_k + 1.0)));
        }
    });
}

TEST_CASE("GEMM: NaN passes through the fused ReLU on every table, as in the reference") {
    Rng rng(4);
    for_each_fast_table([&](const KernelTable& table) {
        const int m = 13, n = 37, k = 5;  // full tiles and edge tiles
        std::vector<float> a = normal_values(static_cast<std::size_t>(m) * k, rng);
        const std::vector<float> b = normal_values(static_cast<std::size_t>(k) * n, rng);
        a[0] = std::numeric_limits<float>::quiet_NaN();               // row 0 of C: NaN everywhere
        a[static_cast<std::size_t>(12) * k] = std::numeric_limits<float>::quiet_NaN();  // row 12: an edge tile
        std::vector<float> expected(static_cast<std::size_t>(m) * n), actual(expected.size());
        reference_kernels().gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, expected.data(), n,
                                     {nullptr, true}, nullptr);
        table.gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, actual.data(), n, {nullptr, true},
                       gemm_workspace(table, m, n, k).data());
        for (std::size_t i = 0; i < actual.size(); ++i) CHECK(std::isnan(actual[i]) == std::isnan(expected[i]));
        CHECK(std::isnan(actual[5]));
    });
}

TEST_CASE("GEMM: called from inside a parallel loop (one GEMM per thread) it matches the reference") {
    Rng rng(9);
    for_each_fast_table([&](const KernelTable& table) {
        const int m = 70, n = 301, k = 129, copies = 4;
        const std::vector<float> a = normal_values(static_cast<std::size_t>(m) * k, rng);
        const std::vector<float> b = normal_values(static_cast<std::size_t>(k) * n, rng);
        std::vector<float> expected(static_cast<std::size_t>(m) * n);
        reference_kernels().gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, expected.data(), n, {},
                                     nullptr);
        std::vector<std::vector<float>> results(copies, std::vector<float>(expected.size()));
        std::vector<AlignedFloats> workspaces(copies, gemm_workspace(table, m, n, k));  // one per concurrent GEMM
#pragma omp parallel for schedule(static)
        for (int copy = 0; copy < copies; ++copy)
            table.gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                           results[static_cast<std::size_t>(copy)].data(), n, {},
                           workspaces[static_cast<std::size_t>(copy)].data());
        for (const std::vector<float>& result : results)
            for (std::size_t i = 0; i < result.size(); ++i)
                CHECK(result[i] == doctest::Approx(expected[i]).epsilon(1e-4).scale(1.0));
    });
}

TEST_CASE("GEMM: an empty product leaves only beta, bias and ReLU") {
    Rng rng(3);
    for_each_fast_table([&](const KernelTable& table) {
        check_gemm(table, {7, 18, 0, false, false, 1.0f, 0.5f, true, true}, rng);
        check_gemm(table, {7, 18, 0, false, false, 1.0f, 0.0f, true, false}, rng);
    });
}

TEST_CASE("narrow GEMM: every table matches the reference on every column count up to three tiles, odd rows, bias, "
          "ReLU and NaN") {
    Rng rng(11);
    // Rows around the narrow tile's (8, 12, 16 or 32: whole vectors) and columns from 1 to past three tiles of 6, 8 or
    // 12, at the depths of the reference network's products and odd ones; C with a row stride wider than n.
    const int rows[] = {1, 13, 32, 45, 64};
    const int depths[] = {0, 1, 7, 256, 513};
    for_each_fast_table([&](const KernelTable& table) {
        for (const int m : rows)
            for (const int k : depths)
                for (int n = 1; n <= 40; n += (n < 14 ? 1 : 13)) {
                    CAPTURE(m);
                    CAPTURE(k);
                    CAPTURE(n);
                    const int ldb = n + 3, ldc = n + 2;
                    std::vector<float> a = normal_values(static_cast<std::size_t>(m) * k, rng);
                    const std::vector<float> b = normal_values(static_cast<std::size_t>(std::max(k, 1)) * ldb, rng);
                    const std::vector<float> bias = normal_values(static_cast<std::size_t>(m), rng);
                    if (k > 0) a[static_cast<std::size_t>(m - 1) * k] = std::numeric_limits<float>::quiet_NaN();
                    for (const bool epilogue_on : {false, true}) {
                        const GemmEpilogue epilogue{epilogue_on ? bias.data() : nullptr, epilogue_on};
                        std::vector<float> expected(static_cast<std::size_t>(m) * ldc, 7.0f), actual = expected;
                        reference_kernels().gemm_f32(false, false, m, n, k, 1.0f, a.data(), k, b.data(), ldb, 0.0f,
                                                     expected.data(), ldc, epilogue, nullptr);
                        std::vector<float> packed(table.gemm_pack_a_narrow_f32(m, k, a.data(), k, nullptr));
                        CHECK(table.gemm_pack_a_narrow_f32(m, k, a.data(), k, packed.data()) == packed.size());
                        table.gemm_narrow_f32(m, n, k, packed.data(), b.data(), ldb, actual.data(), ldc, epilogue);
                        int mismatches = 0;
                        for (std::size_t i = 0; i < actual.size(); ++i) {
                            const double want = expected[i], got = actual[i];
                            const double tolerance =
                                kGemmAbsoluteTolerance * std::sqrt(k + 1.0) + kGemmRelativeTolerance * std::abs(want);
                            const bool same = std::isnan(want) ? std::isnan(got) : std::abs(got - want) <= tolerance;
                            if (!same && mismatches++ < 5)
                                FAIL_CHECK("C[" << i << "] = " << got << ", reference " << want);
                        }
                        CHECK(mismatches == 0);
                    }
                }
    });
}

TEST_CASE("2x2 max pooling: every table matches the reference, winners and ties included, odd sizes") {
    Rng rng(5);
    // Widths around the SIMD widths (4, 8 and 16 outputs per step; overlapping last vectors), odd sizes whose last
    // row/column is dropped, and rows narrower than a vector (pooled across rows and planes).
    const int sizes[][3] = {{1, 2, 2},  {13, 7, 11}, {3, 9, 33},  {2, 16, 34}, {5, 3, 17}, {1, 80, 120},
                            {4, 20, 30}, {3, 10, 15}, {2, 5, 43}, {37, 4, 7}, {3, 3, 5},  {1, 6, 10}, {2, 4, 8}};
    for_each_fast_table([&](const KernelTable& table) {
        for (const auto& size : sizes) {
            const int planes = size[0], height = size[1], width = size[2];
            CAPTURE(height);
            CAPTURE(width);
            std::vector<float> x = normal_values(static_cast<std::size_t>(planes) * height * width, rng);
            // Coarse values make ties common, so the first-maximum rule is exercised.
            for (std::size_t i = 0; i < x.size(); i += 2) x[i] = std::round(x[i]);
            // Infinities: an input of -inf loses to the finite values of its window, one of +inf wins its window.
            x[x.size() / 3] = -std::numeric_limits<float>::infinity();
            x.back() = std::numeric_limits<float>::infinity();
            const std::size_t outputs = static_cast<std::size_t>(planes) * (height / 2) * (width / 2);
            std::vector<float> expected(outputs), actual(outputs), inference(outputs);
            std::vector<std::uint32_t> expected_winners(outputs), actual_winners(outputs);
            reference_kernels().max_pool_2x2_f32(x.data(), planes, height, width, expected.data(),
                                                 expected_winners.data());
            table.max_pool_2x2_f32(x.data(), planes, height, width, actual.data(), actual_winners.data());
            table.max_pool_2x2_f32(x.data(), planes, height, width, inference.data(), nullptr);
            CHECK(actual == expected);
            CHECK(inference == expected);
            CHECK(actual_winners == expected_winners);
        }
    });
}

TEST_CASE("Adam update: every training table matches the reference over odd lengths and several steps") {
    constexpr double kAdamTolerance = 1e-6;  // the SIMD path fuses multiply-adds the reference rounds twice
    Rng rng(6);
    REQUIRE(available_training_kernel_tables().back()->name == "scalar");
    for (const TrainingKernelTable* table_pointer : available_training_kernel_tables()) {
        const TrainingKernelTable& table = *table_pointer;
        CAPTURE(table.name);
        for (const std::ptrdiff_t n : {1, 7, 8, 33, 1001}) {
            CAPTURE(n);
            std::vector<float> expected = normal_values(static_cast<std::size_t>(n), rng), actual = expected;
            std::vector<float> m_expected(static_cast<std::size_t>(n)), v_expected(m_expected.size());
            std::vector<float> m_actual = m_expected, v_actual = v_expected;
            for (int t = 1; t <= 3; ++t) {
                const std::vector<float> gradients = normal_values(static_cast<std::size_t>(n), rng);
                const AdamStepF32 step{0.9f, 0.999f, 1e-8f, static_cast<float>(1e-2 / (1.0 - std::pow(0.9, t))),
                                       static_cast<float>(std::sqrt(1.0 - std::pow(0.999, t))), 1.0f - 1e-4f};
                reference_training_kernels().adam_f32(step, n, expected.data(), gradients.data(), m_expected.data(),
                                                      v_expected.data());
                table.adam_f32(step, n, actual.data(), gradients.data(), m_actual.data(), v_actual.data());
            }
            for (std::size_t i = 0; i < expected.size(); ++i) {
                CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(kAdamTolerance));
                CHECK(m_actual[i] == doctest::Approx(m_expected[i]).epsilon(kAdamTolerance));
                CHECK(v_actual[i] == doctest::Approx(v_expected[i]).epsilon(kAdamTolerance));
            }
        }
    }
    // The optimizer follows the runtime's arch: forcing the scalar kernels forces the scalar Adam too.
    const std::string original = kernels().name;
    select_kernels("scalar");
    const bool scalar_adam = training_kernels().adam_f32 == reference_training_kernels().adam_f32;
    CHECK(scalar_adam);
    select_kernels(original);
    CHECK(training_kernels().name == original);
}

TEST_CASE("FMA peak probe: every table does the work it claims and reaches the closed-form value") {
    const long iterations = 2000;
    const float start = 0.25f;
    // x_T = 1 + (x_0 - 1) * m^T for x <- m x + a with a = 1 - m (the fixed point is 1), averaged over the chains.
    double mean_start = 0.0;
    for (int chain = 0; chain < kFmaPeakChains; ++chain) mean_start += fma_peak_chain_start(start, chain);
    mean_start /= kFmaPeakChains;
    const double expected = 1.0 + (mean_start - 1.0) * std::pow(static_cast<double>(kFmaPeakMultiplier), iterations);
    for (const KernelTable* table : available_kernel_tables()) {
        CAPTURE(table->name);
        const FmaPeakResult result = table->fma_peak_f32(iterations, start);
        CHECK(result.value == doctest::Approx(expected).epsilon(1e-3));
        CHECK(result.flops >= 2.0 * iterations * kFmaPeakChains);
    }
}

namespace {
bool cpu_has_it() { return true; }
bool cpu_lacks_it() { return false; }
void install_marker_gemm(KernelTable& t) { t.gemm_workspace_f32 = [](int, int, int, bool) -> std::size_t { return 1; }; }
void install_reference_gemm(KernelTable& t) { t.gemm_workspace_f32 = reference_kernels().gemm_workspace_f32; }
void install_pool(KernelTable& t) { t.max_pool_2x2_f32 = reference_kernels().max_pool_2x2_f32; }
}  // namespace

TEST_CASE("kernels are chosen per op: an arch this CPU lacks leaves only its own op on the fallback") {
    // "fancy" has a GEMM this CPU cannot run and a max-pool it can; each op keeps what runs.
    const std::vector<KernelListing<KernelTable>> list = {
        {"gemm", DataType::F32, "fancy", cpu_lacks_it, install_marker_gemm},
        {"max_pool_2x2", DataType::F32, "fancy", cpu_has_it, install_pool},
        {"gemm", DataType::F32, "scalar", cpu_has_it, install_reference_gemm},
        {"max_pool_2x2", DataType::F32, "scalar", cpu_has_it, install_pool},
    };
    const KernelTable best = assemble_kernel_table(list, "");
    CHECK(best.name == "mixed");
    CHECK(best.kernels_used == "gemm_f32 scalar, max_pool_2x2_f32 fancy");
    CHECK(best.gemm_workspace_f32(1, 1, 1, false) == 0);  // the runnable one, not the marker
    const KernelTable forced = assemble_kernel_table(list, "scalar");
    CHECK(forced.kernels_used == "gemm_f32 scalar, max_pool_2x2_f32 scalar");
    // When the lacking kernel becomes runnable it is chosen, with no other change.
    std::vector<KernelListing<KernelTable>> upgraded = list;
    upgraded[0].cpu_supports = cpu_has_it;
    const KernelTable fancy = assemble_kernel_table(upgraded, "");
    CHECK(fancy.name == "fancy");
    CHECK(fancy.gemm_workspace_f32(1, 1, 1, false) == 1);
}

TEST_CASE("kernel list: every op has a scalar reference, each arch's table uses its listed kernels, one per op") {
    const std::vector<KernelListing<KernelTable>>& list = kernel_list();
    const auto op_name = [](const KernelListing<KernelTable>& l) { return std::string(l.op) + "_" + data_type_name(l.type); };
    std::vector<std::string> ops;
    for (const KernelListing<KernelTable>& listing : list)
        if (std::find(ops.begin(), ops.end(), op_name(listing)) == ops.end()) ops.push_back(op_name(listing));
    for (const std::string& op : ops) {
        CAPTURE(op);
        CHECK(std::count_if(list.begin(), list.end(), [&](const KernelListing<KernelTable>& l) {
                  return op_name(l) == op && std::string(l.arch) == "scalar";
              }) == 1);
    }
    const auto& tables = available_kernel_tables();
    REQUIRE_FALSE(tables.empty());
    CHECK(tables.back()->name == "scalar");
    CHECK(reference_kernels().kernels_used == tables.back()->kernels_used);
    for (const KernelTable* table : tables) {
        CAPTURE(table->name);
        // "gemm_f32 avx2, ...": one entry per op, this arch's kernel wherever the list has one for this CPU.
        for (const KernelListing<KernelTable>& listing : list) {
            if (table->name != listing.arch || !listing.cpu_supports()) continue;
            CHECK(table->kernels_used.find(op_name(listing) + " " + listing.arch) != std::string::npos);
        }
        CHECK(std::count(table->kernels_used.begin(), table->kernels_used.end(), ',') + 1 ==
              static_cast<std::ptrdiff_t>(ops.size()));
    }
    // The default takes each op's first runnable kernel: on every CPU here, the first table's.
    CHECK(kernels().kernels_used.empty() == false);
    CHECK_THROWS_AS(select_kernels("no-such-arch"), Error);
}

TEST_CASE("Winograd tile transforms: every table equals the reference bit for bit, edges and NaN included") {
    Rng rng(12);
    // The transforms of both output tiles; the output gradient exists for 2x2 tiles only.
    struct Transforms {
        int size;
        WinogradInputRowF32 KernelTable::*input;
        WinogradOutputRowF32 KernelTable::*output;
    };
    const Transforms tiles[] = {
        {2, &KernelTable::winograd_input_row_f32, &KernelTable::winograd_output_row_f32},
        {4, &KernelTable::winograd_f4_input_row_f32, &KernelTable::winograd_f4_output_row_f32}};
    for (const Transforms& tile : tiles) {
        CAPTURE(tile.size);
        const int positions = (tile.size + 2) * (tile.size + 2);
        for_each_fast_table([&](const KernelTable& table) {
            for (const int width : {1, 6, 13, 37}) {
                CAPTURE(width);
                const int height = 5, tile_columns = (width + tile.size - 1) / tile.size;
                const std::size_t scratch_floats = 48 * static_cast<std::size_t>(tile_columns) + 48;
                std::vector<float> plane = normal_values(static_cast<std::size_t>(height) * width, rng);
                plane[0] = std::numeric_limits<float>::quiet_NaN();
                const std::ptrdiff_t stride = tile_columns + 3;  // positions apart, with a gap that must stay untouched
                for (const int first_row : {-1, 0, 3}) {
                    std::vector<float> expected(positions * static_cast<std::size_t>(stride), kGuardValue),
                        actual = expected;
                    std::vector<float> scratch(scratch_floats);
                    (reference_kernels().*tile.input)(plane.data(), height, width, first_row, -1, tile_columns, stride,
                                                      expected.data(), scratch.data());
                    (table.*tile.input)(plane.data(), height, width, first_row, -1, tile_columns, stride,
                                        actual.data(), scratch.data());
                    CHECK(std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float)) == 0);
                    if (tile.size != 2) continue;
                    std::fill(expected.begin(), expected.end(), kGuardValue);
                    std::fill(actual.begin(), actual.end(), kGuardValue);
                    reference_kernels().winograd_gradient_row_f32(plane.data(), height, width, first_row + 1,
                                                                  tile_columns, stride, expected.data(),
                                                                  scratch.data());
                    table.winograd_gradient_row_f32(plane.data(), height, width, first_row + 1, tile_columns, stride,
                                                    actual.data(), scratch.data());
                    CHECK(std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float)) == 0);
                }
                // One row of tiles from output row 3 (cropped at the plane's 5 rows), and every row of tiles at once.
                for (const int tile_rows : {1, (height + tile.size - 1) / tile.size}) {
                    CAPTURE(tile_rows);
                    const int first_row = tile_rows == 1 ? 3 : 0;
                    const std::ptrdiff_t tiles_stride = tile_rows * tile_columns + 3;
                    std::vector<float> m = normal_values(positions * static_cast<std::size_t>(tiles_stride), rng);
                    m[tile_rows * tile_columns - 1] = std::numeric_limits<float>::quiet_NaN();  // the last tile's
                    std::vector<float> scratch(winograd_output_scratch_floats(tile.size, tile_columns, tile_rows));
                    for (const bool relu : {false, true}) {
                        std::vector<float> expected(static_cast<std::size_t>(height) * width, kGuardValue),
                            actual = expected;
                        (reference_kernels().*tile.output)(m.data(), tiles_stride, tile_columns, tile_rows, 0.25f,
                                                           relu, false, expected.data(), height, width, first_row,
                                                           scratch.data());
                        (table.*tile.output)(m.data(), tiles_stride, tile_columns, tile_rows, 0.25f, relu, false,
                                             actual.data(), height, width, first_row, scratch.data());
                        CHECK(std::memcmp(expected.data(), actual.data(), expected.size() * sizeof(float)) == 0);
                        // Rows 3 and 4 only, or all of them.
                        CHECK((actual[0] == kGuardValue) == (first_row == 3));
                        CHECK(actual[static_cast<std::size_t>(3) * width] != kGuardValue);
                        CHECK(actual[static_cast<std::size_t>(height) * width - 1] != kGuardValue);
                        if (first_row != 0) continue;
                        // Pooled on the way out: what the max pool makes of the whole output, bit for bit (its
                        // last odd row and column dropped), on every table.
                        const int pooled_height = height / 2, pooled_width = width / 2;
                        std::vector<float> pooled(static_cast<std::size_t>(pooled_height) * pooled_width + 1,
                                                  kGuardValue),
                            pooled_by_table = pooled, pooled_after(pooled.size());  // (never empty: memcmp)
                        (reference_kernels().*tile.output)(m.data(), tiles_stride, tile_columns, tile_rows, 0.25f,
                                                           relu, true, pooled.data(), height, width, 0,
                                                           scratch.data());
                        (table.*tile.output)(m.data(), tiles_stride, tile_columns, tile_rows, 0.25f, relu, true,
                                             pooled_by_table.data(), height, width, 0, scratch.data());
                        reference_kernels().max_pool_2x2_f32(expected.data(), 1, height, width, pooled_after.data(),
                                                             nullptr);
                        CHECK(std::memcmp(pooled.data(), pooled_after.data(), (pooled.size() - 1) * sizeof(float)) ==
                              0);
                        CHECK(std::memcmp(pooled.data(), pooled_by_table.data(), pooled.size() * sizeof(float)) == 0);
                        CHECK(pooled.back() == kGuardValue);
                        // The second row of tiles alone (as a call for one row of tiles further down makes it): its
                        // pooled rows (none, for 4x4 tiles on 5 rows), and no others.
                        std::vector<float> second(pooled.size(), kGuardValue);
                        (table.*tile.output)(m.data() + tile_columns, tiles_stride, tile_columns, 1, 0.25f, relu, true,
                                             second.data(), height, width, tile.size, scratch.data());
                        for (int py = 0; py < pooled_height; ++py)
                            for (int px = 0; px < pooled_width; ++px) {
                                const int at = py * pooled_width + px;
                                const bool covered = py >= tile.size / 2 && py < tile.size;
                                CHECK(std::memcmp(second.data() + at, covered ? pooled.data() + at : &kGuardValue,
                                                  sizeof(float)) == 0);
                            }
                    }
                }
            }
        });
    }
}

TEST_CASE("Winograd 4x4 tiles: the transforms compute B^T d B and A^T m A as written out in Lavin & Gray") {
    // The reference against the matrices themselves, so the fast kernels' bit-for-bit match above means something.
    constexpr double kInput[6][6] = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                     {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
    constexpr double kOutput[4][6] = {
        {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
    Rng rng(13);
    const int width = 10, height = 6, tile_columns = 2;  // one row of two tiles, columns 0..9 of the plane
    const std::vector<float> plane = normal_values(static_cast<std::size_t>(height) * width, rng);
    std::vector<float> v(36 * tile_columns), scratch(200);
    reference_kernels().winograd_f4_input_row_f32(plane.data(), height, width, 0, 0, tile_columns, tile_columns,
                                                  v.data(), scratch.data());
    const std::vector<float> m = normal_values(36 * tile_columns, rng);
    std::vector<float> y(4 * 8);
    reference_kernels().winograd_f4_output_row_f32(m.data(), tile_columns, tile_columns, 1, 0.0f, false, false,
                                                   y.data(), 4, 8, 0, scratch.data());
    for (int tx = 0; tx < tile_columns; ++tx) {
        for (int i = 0; i < 6; ++i)
            for (int j = 0; j < 6; ++j) {
                double want = 0;
                for (int r = 0; r < 6; ++r)
                    for (int c = 0; c < 6; ++c)
                        want += kInput[i][r] * kInput[j][c] * plane[static_cast<std::size_t>(r * width + 4 * tx + c)];
                const std::size_t position = static_cast<std::size_t>((6 * i + j) * tile_columns + tx);
                CHECK(v[position] == doctest::Approx(want).epsilon(1e-5));
            }
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                double want = 0;
                for (int r = 0; r < 6; ++r)
                    for (int c = 0; c < 6; ++c)
                        want += kOutput[i][r] * kOutput[j][c] *
                                m[static_cast<std::size_t>((6 * r + c) * tile_columns + tx)];
                CHECK(y[static_cast<std::size_t>(i * 8 + 4 * tx + j)] == doctest::Approx(want).epsilon(1e-5));
            }
    }
}

namespace {

struct S8GemmCase {
    int m, n, k;
    bool transpose_b;
    bool requantize, relu, bias;
    int zero_point;
    enum Values { Random, Extreme, ZeroRows } values;
};

// One int8 GEMM case on padded strides, both epilogues, against the reference: every output bit for bit, the
// workspace exactly as large as the table says, padding between output rows untouched.
void check_gemm_s8(const KernelTable& table, const S8GemmCase& t, Rng& rng) {
    CAPTURE(t.m);
    CAPTURE(t.n);
    CAPTURE(t.k);
    CAPTURE(t.transpose_b);
    CAPTURE(t.requantize);
    CAPTURE(t.relu);
    CAPTURE(static_cast<int>(t.values));
    const int lda = t.k + 3, ldb = (t.transpose_b ? t.k : t.n) + 5, ldc = t.n + 2;
    std::vector<std::int8_t> a(static_cast<std::size_t>(lda) * t.m);
    std::vector<std::uint8_t> b(static_cast<std::size_t>(ldb) * (t.transpose_b ? t.n : t.k));
    for (std::size_t i = 0; i < a.size(); ++i) {
        const int row = static_cast<int>(i) / lda;
        if (t.values == S8GemmCase::Extreme) a[i] = (i % 3 == 0) ? -127 : 127;  // the pair sums at their bounds
        else if (t.values == S8GemmCase::ZeroRows && row % 2 == 0) a[i] = 0;
        else a[i] = static_cast<std::int8_t>(static_cast<int>(rng.below(255)) - 127);
    }
    for (std::uint8_t& v : b)
        v = t.values == S8GemmCase::Extreme ? kActivationMax : static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
    std::vector<std::int32_t> bias(static_cast<std::size_t>(t.m));
    std::vector<float> scale(static_cast<std::size_t>(t.m));
    for (int i = 0; i < t.m; ++i) {
        bias[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng.below(200001)) - 100000;
        // Scales that map the sums over the whole output range, so clamping and rounding ties both happen.
        scale[static_cast<std::size_t>(i)] = rng.uniform(0.5f, 4.0f) / (64.0f * std::sqrt(t.k + 1.0f));
    }
    const auto run = [&](const KernelTable& kernels, std::vector<std::uint8_t>& quantized, std::vector<float>& real) {
        std::vector<std::int8_t> packed(kernels.gemm_pack_a_s8(t.m, t.k, a.data(), lda, nullptr));
        kernels.gemm_pack_a_s8(t.m, t.k, a.data(), lda, packed.data());
        const std::size_t workspace_bytes = kernels.gemm_workspace_s8(t.m, t.n, t.k);
        std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(workspace_bytes + 256, 0xA5);
        IntegerGemmEpilogue epilogue;
        epilogue.row_bias = t.bias ? bias.data() : nullptr;
        epilogue.row_scale = scale.data();
        epilogue.relu = t.relu;
        epilogue.ldc = ldc;
        if (t.requantize) {
            epilogue.quantized = quantized.data();
            epilogue.zero_point = t.zero_point;
        } else {
            epilogue.real = real.data();
        }
        kernels.gemm_packed_a_s8(t.transpose_b, t.m, t.n, t.k, packed.data(), b.data(), ldb, epilogue, workspace.data());
        CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_bytes), workspace.end(),
                          [](unsigned char v) { return v == 0xA5; }));
    };
    const std::size_t outputs = static_cast<std::size_t>(ldc) * t.m;
    std::vector<std::uint8_t> expected_q(outputs, 200), actual_q(outputs, 200);
    std::vector<float> expected_r(outputs, -7.0f), actual_r(outputs, -7.0f);
    run(reference_kernels(), expected_q, expected_r);
    run(table, actual_q, actual_r);
    CHECK(expected_q == actual_q);
    CHECK(std::memcmp(expected_r.data(), actual_r.data(), outputs * sizeof(float)) == 0);
    if (t.requantize) {  // the output range, and the padding between rows untouched
        for (int i = 0; i < t.m; ++i)
            for (int j = 0; j < ldc; ++j) {
                const std::uint8_t q = actual_q[static_cast<std::size_t>(i) * ldc + j];
                if (j >= t.n) CHECK(q == 200);
                else CHECK(q >= (t.relu ? t.zero_point : 0));
                if (j < t.n) CHECK(q <= kActivationMax);
            }
    }
}

}  // namespace

TEST_CASE("int8 GEMM: every table equals the reference bit for bit: odd shapes, extremes, zero rows, both epilogues") {
    Rng rng(21);
    // Around the register tiles (2 to 32 rows, 8 to 32 columns), the depth padding (multiples of 8, or of 64 for
    // AMX), a row block of 256 KiB, and the reference network's shapes at batch 1 (the first conv's 27 deep, conv3's
    // 576).
    const int sizes[][3] = {{1, 1, 1},    {13, 17, 29}, {4, 16, 8},  {5, 33, 9},     {3, 7, 3},
                            {32, 97, 27}, {64, 31, 576}, {7, 1, 4608}, {130, 35, 2305}, {33, 150, 13},
                            {31, 32, 64}, {65, 63, 129}};
    for_each_fast_table([&](const KernelTable& table) {
        for (const auto& size : sizes)
            for (const bool transpose_b : {false, true}) {
                check_gemm_s8(table, {size[0], size[1], size[2], transpose_b, true, true, true, 0, S8GemmCase::Random}, rng);
                check_gemm_s8(table, {size[0], size[1], size[2], transpose_b, true, false, true, 64, S8GemmCase::Random}, rng);
                check_gemm_s8(table, {size[0], size[1], size[2], transpose_b, false, true, false, 0, S8GemmCase::ZeroRows}, rng);
                check_gemm_s8(table, {size[0], size[1], size[2], transpose_b, false, false, true, 0, S8GemmCase::Extreme}, rng);
                check_gemm_s8(table, {size[0], size[1], size[2], transpose_b, true, true, false, 3, S8GemmCase::Extreme}, rng);
            }
    });
}

namespace {

// One 3x3 convolution through the s8 conv GEMM (B packed from the image) on a table, in each order of its products,
// and on the reference, or its 2x2 max pool: every output bit for bit, as sums and requantized (with ReLU, and
// without on odd shapes: the two paths of the epilogue), nothing written outside C, the workspace exactly as large
// as the table says.
void check_conv3x3_s8(const KernelTable& table, int m, int channels, int height, int width, bool extreme, bool pool,
                      Rng& rng) {
    CAPTURE(m);
    CAPTURE(channels);
    CAPTURE(height);
    CAPTURE(width);
    CAPTURE(extreme);
    CAPTURE(pool);
    const int k = 9 * channels, n = pool ? height / 2 * (width / 2) : height * width;
    std::vector<std::int8_t> weights(static_cast<std::size_t>(m) * k);
    for (std::size_t i = 0; i < weights.size(); ++i)
        weights[i] = extreme ? (i % 5 == 0 ? -127 : 127)
                             : static_cast<std::int8_t>(static_cast<int>(rng.below(255)) - 127);
    std::vector<std::uint8_t> x(static_cast<std::size_t>(channels) * height * width);
    for (std::uint8_t& v : x) v = extreme ? kActivationMax : static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
    const auto padding = static_cast<std::uint8_t>(extreme ? kActivationMax : rng.below(kActivationMax + 1));
    // Requantized: bias and scale per row spread so that outputs fall below, inside and above the 7-bit range.
    std::vector<std::int32_t> row_bias(static_cast<std::size_t>(m));
    std::vector<float> row_scale(static_cast<std::size_t>(m));
    for (int i = 0; i < m; ++i) {
        row_bias[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng.below(20001)) - 10000;
        row_scale[static_cast<std::size_t>(i)] = 4.0f * (0.25f + rng.uniform()) / (127.0f * std::sqrt(k + 1.0f));
    }
    constexpr std::ptrdiff_t kGuard = 64;  // bytes either side of C
    const auto run = [&](const KernelTable& kernels, Conv3x3Order order, bool requantize) {
        std::vector<std::int8_t> packed(kernels.gemm_conv3x3_pack_a_s8(m, channels, order, weights.data(), nullptr));
        kernels.gemm_conv3x3_pack_a_s8(m, channels, order, weights.data(), packed.data());
        const std::size_t workspace_bytes = kernels.gemm_conv3x3_workspace_s8(m, channels, height, width);
        std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(workspace_bytes + 256, 0xA5);
        const std::size_t c_bytes = static_cast<std::size_t>(m) * n * (requantize ? 1 : sizeof(std::int32_t));
        std::vector<unsigned char, AlignedAllocator<unsigned char>> c(c_bytes + 2 * kGuard, 0xA5);
        IntegerGemmEpilogue epilogue;
        epilogue.ldc = n;
        if (requantize) {
            epilogue.quantized = c.data() + kGuard;
            epilogue.row_bias = row_bias.data();
            epilogue.row_scale = row_scale.data();
            epilogue.zero_point = (m + width) % 2 ? 3 : 0;
            epilogue.relu = epilogue.zero_point == 0;
        } else {
            epilogue.sums = reinterpret_cast<std::int32_t*>(c.data() + kGuard);
        }
        kernels.gemm_conv3x3_s8(m, channels, height, width, order, packed.data(), x.data(), padding, pool, epilogue,
                                workspace.data());
        CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_bytes), workspace.end(),
                          [](unsigned char v) { return v == 0xA5; }));
        const auto untouched = [](unsigned char v) { return v == 0xA5; };
        CHECK(std::all_of(c.begin(), c.begin() + kGuard, untouched));
        CHECK(std::all_of(c.end() - kGuard, c.end(), untouched));
        return c;
    };
    for (const bool requantize : {false, true}) {
        CAPTURE(requantize);
        const auto expected = run(reference_kernels(), Conv3x3Order::ByColumns, requantize);
        for (const Conv3x3Order order : {Conv3x3Order::ByColumns, Conv3x3Order::ByPositions}) {
            CAPTURE(static_cast<int>(order));
            CHECK(run(table, order, requantize) == expected);
        }
    }
}

}  // namespace

TEST_CASE("int8 3x3 convolution GEMM (B packed from the image): every table equals the reference bit for bit") {
    Rng rng(23);
    // Rows of 1 and 2 outputs (one output wide and 40 high: too narrow for AMX's vector packing), prime sizes, depths
    // 9 x channels that are and are not multiples of 64, and the reference network's layers at batch 1. Where the
    // tile reads B from the input four channels innermost: channel counts short of a group of four (3, 7, 13),
    // positions of one vector spanning several rows, rows of one vector (15 wide) and of two (31 wide), an odd count
    // of them, and images one output wide or high. Pooled, besides: both rows of a pair in one vector (7 or fewer
    // wide with AVX-512, 3 with AVX2), an odd count of pairs, from the input as it is and packed (one and two
    // channels, one packed only where the tile has no kernel of its own for it: a vector of each row of a pair, its
    // halves two rows apart for the VBMI packer, and a pair a vector).
    // One channel, which AVX-512 VNNI convolves in panels of 8 output channels and units of two rows by 16
    // positions: a part panel, an image one row high and a 2-row one, rows more than a unit long with a part unit
    // at their end, an odd row count, images 2 and 3 wide (pooled: one output a row).
    const int shapes[][4] = {{1, 1, 1, 1},     {5, 1, 7, 1},      {3, 2, 40, 1},    {33, 13, 5, 2},
                             {31, 7, 11, 13},  {64, 32, 40, 60},  {40, 64, 20, 30}, {17, 512, 10, 15},
                             {256, 512, 5, 7}, {3, 3, 3, 97},     {20, 8, 9, 31},   {12, 16, 9, 15},
                             {9, 8, 40, 1},    {7, 3, 1, 23},     {20, 8, 7, 6},    {9, 2, 6, 5},
                             {7, 3, 7, 3},     {32, 1, 9, 61},    {5, 2, 7, 50},    {9, 1, 8, 9},
                             {32, 1, 80, 120}, {17, 1, 2, 17},    {8, 1, 1, 33},    {9, 1, 5, 3},
                             {5, 1, 6, 2}};
    for_each_fast_table([&](const KernelTable& table) {
        for (const auto& shape : shapes)
            for (const bool extreme : {false, true})
                for (const bool pool : {false, true})
                    check_conv3x3_s8(table, shape[0], shape[1], shape[2], shape[3], extreme, pool, rng);
    });
}

TEST_CASE("int8 GEMMs on 1 to 4 threads: the shares of the tiles, whole and half panels, equal the reference") {
    Rng rng(29);
    const int caller_threads = omp_get_max_threads();
    // Products large enough to run in parallel, in few row blocks or many, with a last panel of 16 columns or fewer
    // (a half tile where the tile has one) or more, and fewer columns than one panel.
    const int gemm_sizes[][3] = {{130, 35, 2305}, {61, 45, 999}, {97, 16, 1300}, {200, 20, 700}, {13, 300, 800}};
    const int conv_shapes[][4] = {{256, 512, 5, 7}, {40, 64, 20, 30}, {77, 96, 9, 9}, {33, 1, 61, 67}};
    for_each_fast_table([&](const KernelTable& table) {
        for (int threads = 1; threads <= 4; ++threads) {
            CAPTURE(threads);
            omp_set_num_threads(threads);
            for (const auto& size : gemm_sizes)
                check_gemm_s8(table, {size[0], size[1], size[2], false, true, true, true, 0, S8GemmCase::Random},
                              rng);
            for (const auto& shape : conv_shapes)
                for (const bool pool : {false, true})
                    check_conv3x3_s8(table, shape[0], shape[1], shape[2], shape[3], false, pool, rng);
        }
    });
    omp_set_num_threads(caller_threads);
}

TEST_CASE("f32 3x3 convolution GEMM (B from the image): the bits of the packed GEMM on im2col, on every table") {
    Rng rng(29);
    // One-output rows and columns, prime sizes, a last column panel (or a row's last tile) part empty, depths of one
    // and of several depth blocks (9 x 70 = 630, 9 x 512 = 4608; 9 x 65 = 585 cut unevenly), more columns than a
    // column block (61 x 70 = 4270), rows wider than a tile, the network's layers; images multiplied together (their
    // columns in one product, bands of rows across images), each image's bits those of its product alone. Every
    // other shape without bias and ReLU.
    const int shapes[][5] = {{1, 1, 1, 1, 1},      {5, 1, 7, 1, 3},    {3, 2, 40, 1, 2},     {33, 13, 5, 2, 1},
                             {31, 7, 11, 13, 2},   {13, 70, 9, 31, 1}, {3, 2, 61, 70, 1},    {40, 64, 20, 30, 1},
                             {17, 512, 10, 15, 2}, {3, 3, 3, 97, 1},   {37, 512, 5, 7, 8},   {20, 64, 10, 15, 3},
                             {19, 65, 6, 9, 2}};
    for_each_fast_table([&](const KernelTable& table) {
        for (std::size_t index = 0; index < std::size(shapes); ++index) {
            const auto& shape = shapes[index];
            const int m = shape[0], channels = shape[1], height = shape[2], width = shape[3], images = shape[4];
            CAPTURE(m);
            CAPTURE(channels);
            CAPTURE(height);
            CAPTURE(width);
            CAPTURE(images);
            const ConvGeometry g{channels, height, width, 3, 1, 1, height, width};
            const int k = g.rows(), n = g.positions();
            const std::vector<float> weights = normal_values(static_cast<std::size_t>(m) * k, rng);
            const std::vector<float> x = normal_values(static_cast<std::size_t>(images) * channels * n, rng);
            const std::vector<float> bias = normal_values(static_cast<std::size_t>(m), rng);
            const GemmEpilogue epilogue = index % 2 == 0 ? GemmEpilogue{bias.data(), true} : GemmEpilogue{};
            std::vector<float> packed(table.gemm_pack_a_f32(false, m, k, weights.data(), k, nullptr));
            table.gemm_pack_a_f32(false, m, k, weights.data(), k, packed.data());

            const std::size_t image_out = static_cast<std::size_t>(m) * n;
            std::vector<float> columns(static_cast<std::size_t>(k) * n), expected(image_out * images);
            AlignedFloats gemm_workspace(table.gemm_workspace_f32(m, n, k, true));
            for (int image = 0; image < images; ++image) {
                im2col(g, x.data() + static_cast<std::size_t>(image) * channels * n, 1, columns.data());
                table.gemm_packed_a_f32(false, m, n, k, 1.0f, packed.data(), columns.data(), n, 0.0f,
                                        expected.data() + image * image_out, n, epilogue, gemm_workspace.data());
            }

            const std::size_t workspace_floats = table.gemm_conv3x3_workspace_f32(m, channels, height, width, images);
            AlignedFloats workspace(workspace_floats + 64);
            std::fill(workspace.begin(), workspace.end(), kGuardValue);
            std::vector<float> actual(expected.size(), -1.0f);
            std::vector<float> conv_packed(table.gemm_conv3x3_pack_a_f32(m, channels, weights.data(), nullptr));
            table.gemm_conv3x3_pack_a_f32(m, channels, weights.data(), conv_packed.data());
            table.gemm_conv3x3_f32(m, channels, height, width, images, conv_packed.data(), x.data(), actual.data(),
                                   epilogue, workspace.data());
            CHECK(std::memcmp(actual.data(), expected.data(), actual.size() * sizeof(float)) == 0);
            CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_floats), workspace.end(),
                              [](float v) { return v == kGuardValue; }));
        }
    });
}

TEST_CASE("int8 3x3 convolution GEMM: the reference equals im2col and the reference GEMM") {
    Rng rng(24);
    const ConvGeometry g{5, 7, 5, 3, 1, 1, 7, 5};
    const int m = 3, k = g.rows(), n = g.positions();
    std::vector<std::int8_t> weights(static_cast<std::size_t>(m) * k);
    for (std::int8_t& w : weights) w = static_cast<std::int8_t>(static_cast<int>(rng.below(255)) - 127);
    std::vector<std::uint8_t> x(static_cast<std::size_t>(g.channels) * g.height * g.width);
    for (std::uint8_t& v : x) v = static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
    const std::uint8_t padding = 9;
    const KernelTable& reference = reference_kernels();
    const Conv3x3Order order = Conv3x3Order::ByColumns;  // the reference's only
    std::vector<std::int8_t> packed(reference.gemm_conv3x3_pack_a_s8(m, g.channels, order, weights.data(), nullptr));
    reference.gemm_conv3x3_pack_a_s8(m, g.channels, order, weights.data(), packed.data());
    std::vector<std::int32_t> expected(static_cast<std::size_t>(m) * n), actual(expected.size());
    IntegerGemmEpilogue epilogue;
    epilogue.ldc = n;
    std::vector<std::uint8_t> columns(static_cast<std::size_t>(k) * n);
    im2col(g, x.data(), 1, columns.data(), padding);
    epilogue.sums = expected.data();
    reference.gemm_packed_a_s8(false, m, n, k, packed.data(), columns.data(), n, epilogue, nullptr);
    std::vector<unsigned char> workspace(reference.gemm_conv3x3_workspace_s8(m, g.channels, g.height, g.width));
    epilogue.sums = actual.data();
    reference.gemm_conv3x3_s8(m, g.channels, g.height, g.width, order, packed.data(), x.data(), padding, false,
                              epilogue, workspace.data());
    CHECK(actual == expected);
    // Pooled: each output the largest of its 2x2 window's sums (the last row of an odd height left out).
    const int pooled_height = g.height / 2, pooled_width = g.width / 2;
    std::vector<std::int32_t> pooled(static_cast<std::size_t>(m) * pooled_height * pooled_width), windows;
    for (int i = 0; i < m; ++i)
        for (int py = 0; py < pooled_height; ++py)
            for (int px = 0; px < pooled_width; ++px) {
                const std::int32_t* row = expected.data() + static_cast<std::size_t>(i) * n;
                const auto at = [&](int y, int x) { return row[(2 * py + y) * g.width + 2 * px + x]; };
                windows.push_back(std::max({at(0, 0), at(0, 1), at(1, 0), at(1, 1)}));
            }
    epilogue.sums = pooled.data();
    epilogue.ldc = pooled_height * pooled_width;
    reference.gemm_conv3x3_s8(m, g.channels, g.height, g.width, order, packed.data(), x.data(), padding, true,
                              epilogue, workspace.data());
    CHECK(pooled == windows);
}

TEST_CASE("quantizing to 7-bit activations: the reference rounds ties to even and clamps, every table gives its bits") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    // x / 0.5 + 10: ties at 0.5, 1.5 and 2.5 steps, the clamps at 0 and 127 from inside and past them, NaN and both
    // infinities.
    const float scale = 0.5f;
    const int zero_point = 10;
    const std::vector<float> special = {0.25f, 0.75f, 1.25f, -0.25f, -5.0f, -5.5f, 58.5f, 60.0f, nan, inf, -inf, 3.3f};
    const auto expected_of = [&](float x) {
        if (std::isnan(x)) return zero_point;
        const float steps = std::clamp(x / scale, static_cast<float>(-zero_point),
                                       static_cast<float>(kActivationMax - zero_point));
        return static_cast<int>(std::nearbyint(steps)) + zero_point;
    };
    std::vector<std::uint8_t> q(special.size());
    reference_kernels().quantize_u8(special.data(), special.size(), scale, zero_point, q.data());
    for (std::size_t i = 0; i < special.size(); ++i) {
        CAPTURE(special[i]);
        CHECK(q[i] == expected_of(special[i]));
    }
    // Every length up to a few vectors (below one, whole ones, and a last one that overlaps), the reference
    // network's first layer at batch 1, and an unaligned start; nothing written past the end.
    Rng rng(37);
    std::vector<float> x(9601);
    for (float& v : x) v = 40.0f * rng.normal();
    for (std::size_t i = 0; i < x.size(); i += 97) x[i] = special[i / 97 % special.size()];
    for_each_fast_table([&](const KernelTable& table) {
        for (const std::size_t count : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{15},
                                        std::size_t{16}, std::size_t{17}, std::size_t{33}, std::size_t{70},
                                        std::size_t{9600}}) {
            CAPTURE(count);
            for (const int zp : {0, 64, 127}) {
                std::vector<std::uint8_t> expected(count + 8, 0xEE), actual(count + 8, 0xEE);
                reference_kernels().quantize_u8(x.data() + 1, count, 0.7f, zp, expected.data());
                table.quantize_u8(x.data() + 1, count, 0.7f, zp, actual.data());
                CHECK(actual == expected);
            }
        }
    });
}

TEST_CASE("int8 GEMM: the reference sums exactly at the extremes (-127 and 127 weights, activations at 127)") {
    // 4608 products of 127 x 127 and of -127 x 127, summed: well inside int32, and exact.
    const int k = 4608;
    std::vector<std::int8_t> a(2 * static_cast<std::size_t>(k));
    std::fill(a.begin(), a.begin() + k, static_cast<std::int8_t>(127));
    std::fill(a.begin() + k, a.end(), static_cast<std::int8_t>(-127));
    const std::vector<std::uint8_t> b(k, kActivationMax);
    for (const KernelTable* each : available_kernel_tables()) {
        const KernelTable& table = *each;
        CAPTURE(table.name);
        std::vector<std::int8_t> packed(table.gemm_pack_a_s8(2, k, a.data(), k, nullptr));
        table.gemm_pack_a_s8(2, k, a.data(), k, packed.data());
        std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(table.gemm_workspace_s8(2, 1, k));
        const float scale[2] = {1.0f, 1.0f};
        float out[2];
        IntegerGemmEpilogue epilogue;
        epilogue.row_scale = scale;
        epilogue.real = out;
        epilogue.ldc = 1;
        table.gemm_packed_a_s8(false, 2, 1, k, packed.data(), b.data(), 1, epilogue, workspace.data());
        CHECK(out[0] == 127.0f * 127.0f * k);
        CHECK(out[1] == -127.0f * 127.0f * k);
    }
}

TEST_CASE("int16 GEMM (the int8 Winograd's): every table equals the reference bit for bit, raw sums and epilogues") {
    Rng rng(22);
    // The Winograd's operand ranges (transformed weights to 1143, inputs to 508) and around the tiles (2-6 rows,
    // 8 or 16 columns), the depth padding and the row block.
    const int sizes[][3] = {{1, 1, 1}, {13, 17, 29}, {6, 16, 8}, {7, 33, 9}, {64, 150, 512}, {130, 35, 257}, {5, 300, 3}};
    for_each_fast_table([&](const KernelTable& table) {
        for (const auto& size : sizes)
            for (const bool transpose_b : {false, true})
                for (const int output : {0, 1, 2}) {  // sums, requantized, dequantized
                    const int m = size[0], n = size[1], k = size[2];
                    CAPTURE(m);
                    CAPTURE(n);
                    CAPTURE(k);
                    CAPTURE(transpose_b);
                    CAPTURE(output);
                    const int lda = k + 1, ldb = (transpose_b ? k : n) + 3, ldc = n + 2;
                    std::vector<std::int16_t> a(static_cast<std::size_t>(lda) * m), b(static_cast<std::size_t>(ldb) * (transpose_b ? n : k));
                    for (std::int16_t& v : a) v = static_cast<std::int16_t>(static_cast<int>(rng.below(2287)) - 1143);
                    for (std::int16_t& v : b) v = static_cast<std::int16_t>(static_cast<int>(rng.below(1017)) - 508);
                    std::vector<std::int32_t> bias(static_cast<std::size_t>(m));
                    std::vector<float> scale(static_cast<std::size_t>(m));
                    for (int i = 0; i < m; ++i) {
                        bias[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(rng.below(2000001)) - 1000000;
                        scale[static_cast<std::size_t>(i)] = rng.uniform(0.5f, 4.0f) / (3e5f * std::sqrt(k + 1.0f));
                    }
                    const auto run = [&](const KernelTable& kernels, std::vector<std::int32_t>& sums,
                                         std::vector<std::uint8_t>& quantized, std::vector<float>& real) {
                        std::vector<std::int16_t> packed(kernels.gemm_pack_a_s16(m, k, a.data(), lda, nullptr));
                        kernels.gemm_pack_a_s16(m, k, a.data(), lda, packed.data());
                        const std::size_t bytes = kernels.gemm_workspace_s16(m, n, k);
                        std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(bytes + 256, 0xA5);
                        IntegerGemmEpilogue e;
                        e.ldc = ldc;
                        e.row_bias = bias.data();
                        e.row_scale = scale.data();
                        e.relu = true;
                        if (output == 0) e.sums = sums.data();
                        else if (output == 1) e.quantized = quantized.data();
                        else e.real = real.data();
                        kernels.gemm_packed_a_s16(transpose_b, m, n, k, packed.data(), b.data(), ldb, e, workspace.data());
                        CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(bytes), workspace.end(),
                                          [](unsigned char v) { return v == 0xA5; }));
                    };
                    const std::size_t outputs = static_cast<std::size_t>(ldc) * m;
                    std::vector<std::int32_t> expected_s(outputs, 7), actual_s(outputs, 7);
                    std::vector<std::uint8_t> expected_q(outputs, 200), actual_q(outputs, 200);
                    std::vector<float> expected_r(outputs, -7.0f), actual_r(outputs, -7.0f);
                    run(reference_kernels(), expected_s, expected_q, expected_r);
                    run(table, actual_s, actual_q, actual_r);
                    CHECK(expected_s == actual_s);
                    CHECK(expected_q == actual_q);
                    CHECK(std::memcmp(expected_r.data(), actual_r.data(), outputs * sizeof(float)) == 0);
                    // B packed once beforehand (the int8 Winograd's way) gives the same.
                    std::vector<std::int16_t> packed_a(table.gemm_pack_a_s16(m, k, a.data(), lda, nullptr));
                    table.gemm_pack_a_s16(m, k, a.data(), lda, packed_a.data());
                    std::vector<std::int16_t> packed_b(table.gemm_pack_b_s16(transpose_b, n, k, b.data(), ldb, nullptr));
                    table.gemm_pack_b_s16(transpose_b, n, k, b.data(), ldb, packed_b.data());
                    std::vector<std::int32_t> prepacked(outputs, 7);
                    IntegerGemmEpilogue raw;
                    raw.sums = prepacked.data();
                    raw.ldc = ldc;
                    raw.row_bias = bias.data();
                    raw.row_scale = scale.data();
                    table.gemm_packed_ab_s16(m, n, k, packed_a.data(), packed_b.data(), raw);
                    if (output == 0) CHECK(prepacked == expected_s);
                    if (output == 0) {  // the sums themselves, against a plain loop
                        std::int32_t sum = 0;
                        for (int p = 0; p < k; ++p)
                            sum += a[static_cast<std::size_t>(p)] * (transpose_b ? b[static_cast<std::size_t>(p)] : b[static_cast<std::size_t>(p) * ldb]);
                        CHECK(actual_s[0] == sum);
                    }
                }
    });
}

TEST_CASE("kernel list: kernels this CPU cannot run are named, as untested here") {
    std::vector<std::string> untested;
    for (const KernelListing<KernelTable>& listing : kernel_list())
        if (!listing.cpu_supports())
            untested.push_back(std::string(listing.op) + "_" + data_type_name(listing.type) + " " + listing.arch);
    for (const std::string& kernel : untested) MESSAGE("not tested on this CPU, which lacks its instructions: " << kernel);
    // What runs here is tested: every runnable arch has its table.
    for (const KernelListing<KernelTable>& listing : kernel_list()) {
        if (!listing.cpu_supports()) continue;
        const auto& tables = available_kernel_tables();
        CHECK(std::any_of(tables.begin(), tables.end(), [&](const KernelTable* t) { return t->name == listing.arch; }));
    }
}
