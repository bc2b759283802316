// The narrow interface through which layers and the inference plan reach their compute kernels. One kernel list
// (kernels.cpp) names every implementation: op, data type, arch, CPU check and functions. At start-up each op
// gets the first listed kernel this CPU runs, so a kernel using an instruction only some CPUs have (AVX-VNNI, ARM
// sdot) serves its op while every other op keeps its usual kernel; tests and benchmarks walk the same list.
// Callers use kernels() and never look at CPU features.
//
// Kernel files live in engine/kernels/ and are named <op>_<type>_<arch>: <op>_<type>.hpp holds the one generic
// body written against xsimd::batch<T, Arch>, <op>_<type>_<arch>.cpp only instantiates it for one arch (built with
// that arch's compiler flags), and <op>_<type>_reference.cpp is the plain scalar oracle.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

// Applied to C after the product: c = relu(alpha * op(A) * op(B) + beta * c + row_bias[i]).
struct GemmEpilogue {
    const float* row_bias = nullptr;  // m values, one per row of C; null for none
    bool relu = false;
};

// C = alpha * op(A) * op(B) + beta * C, all row-major, then the epilogue. op(A) is m x k, op(B) is k x n, C is
// m x n. lda/ldb/ldc are the row strides of A, B and C as stored (before the transpose is applied). With
// beta == 0, C is not read (it may hold garbage). workspace: at least gemm_workspace_f32(m, n, k, false) floats,
// 64-byte aligned, used by this call alone (a GEMM inside a parallel loop needs one per thread).
using GemmF32 = void (*)(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                         float* workspace);
// The floats of workspace a GEMM of these sizes needs; a_packed: for gemm_packed_a_f32 (A is not packed again).
using GemmWorkspaceF32 = std::size_t (*)(int m, int n, int k, bool a_packed);

// Packs op(A) (m x k, as GemmF32 reads it) once into the layout gemm_f32_packed_a reads, so a GEMM whose A does
// not change (inference weights) skips re-packing it on every call. Returns the floats the packed matrix needs;
// with packed == nullptr it only computes that. A packed matrix is only valid for the table that packed it.
using GemmPackAF32 = std::size_t (*)(bool transpose_a, int m, int k, const float* a, int lda, float* packed);
// GemmF32 with op(A) already packed by the same table's gemm_pack_a_f32; workspace as gemm_workspace_f32(m, n, k,
// true) says.
using GemmPackedAF32 = void (*)(bool transpose_b, int m, int n, int k, float alpha, const float* packed_a,
                                const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                                float* workspace);

// For products only a few columns wide and deep (a batch-1 Winograd convolution's: 12 to 40 tiles, 512 channels),
// where the packed GEMM's vectors along the columns would run partly empty: A packed once (as GemmPackAF32 does,
// in a layout of its own), then C = A B + row bias, ReLU as the epilogue asks, with the vectors along A's rows and
// B's values broadcast from B as stored (no packing). C is m x n with row stride ldc, B k x n with row stride ldb.
// The vector tables' run on the calling thread alone (callers share products out among threads); the sums are
// ordered differently from the packed GEMM's.
using GemmPackANarrowF32 = std::size_t (*)(int m, int k, const float* a, int lda, float* packed);
using GemmNarrowF32 = void (*)(int m, int n, int k, const float* packed_a, const float* b, int ldb, float* c,
                               int ldc, const GemmEpilogue& epilogue);

// The packed-A GEMM of a 3x3 convolution with stride 1 and padding 1: C = A x im2col(x) + row bias, ReLU as the
// epilogue asks, x `channels` planes of height x width (zero outside the image), packed_a from GemmConv3x3PackAF32
// (A: m x 9 channels, row-major; returns the floats, computes only them when packed is null); B is read straight from
// x, without an im2col matrix in between, and the bits are those of GemmPackedAF32 on that matrix. x holds `images`
// images, which make one product (fewer passes over A where an image has few positions); C is images x m x (height x
// width). The workspace's floats (64-byte aligned) come from GemmConv3x3WorkspaceF32.
using GemmConv3x3PackAF32 = std::size_t (*)(int m, int channels, const float* a, float* packed);
using GemmConv3x3WorkspaceF32 = std::size_t (*)(int m, int channels, int height, int width, int images);
using GemmConv3x3F32 = void (*)(int m, int channels, int height, int width, int images, const float* packed_a,
                                const float* x, float* c, const GemmEpilogue& epilogue, float* workspace);

// 2x2 stride-2 max pooling of `planes` planes of height x width into planes of (height / 2) x (width / 2) (a last odd
// row or column is dropped); x and y must not overlap. winners, when not null, receives per output the index within
// its input plane of the first (row-major) maximum, which backward routes the gradient to.
using MaxPool2x2F32 = void (*)(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners);
// The same for 7-bit quantized activations (max commutes with the monotonic quantization: no scale needed).
using MaxPool2x2U8 = void (*)(const std::uint8_t* x, int planes, int height, int width, std::uint8_t* y);
// Float activations to 7-bit ones: q = clamp(round(x / scale) + zero_point, 0, kActivationMax), ties to even; NaN
// becomes the zero point.
using QuantizeU8 = void (*)(const float* x, std::size_t count, float scale, int zero_point, std::uint8_t* q);

// Winograd F(2x2, 3x3) and F(4x4, 3x3) tile transforms of one row of tiles (engine/kernels/winograd_f32.hpp says
// what each computes).
using WinogradInputRowF32 = void (*)(const float* plane, int height, int width, int first_row, int first_column,
                                     int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows);
using WinogradOutputRowF32 = void (*)(const float* m, std::ptrdiff_t position_stride, int tile_columns, int tile_rows,
                                      float shift, bool relu, bool pool, float* plane, int out_height, int out_width,
                                      int first_row, float* scratch);
// The scratch floats one call of an output transform of tile_rows x tile_columns tiles of size x size needs: the
// tiles' column transforms (8 floats a tile for 2x2 tiles, 40 for 4x4) and one output row.
inline std::size_t winograd_output_scratch_floats(int size, int tile_columns, int tile_rows) {
    const std::size_t tiles = static_cast<std::size_t>(tile_rows) * static_cast<std::size_t>(tile_columns);
    return (size == 4 ? 40 : 8) * tiles + static_cast<std::size_t>(size) * static_cast<std::size_t>(tile_columns);
}
using WinogradGradientRowF32 = void (*)(const float* plane, int out_height, int out_width, int first_row,
                                        int tile_columns, std::ptrdiff_t position_stride, float* out, float* rows);

// What the integer GEMMs do with each int32 sum s of row i (output element (i, j) at row i * ldc + j): requantize,
// q = clamp(round((s + row_bias[i]) * row_scale[i]) + zero_point, relu ? zero_point : 0, kActivationMax), into
// `quantized` (7-bit activations, engine/tensor.hpp says why); dequantize, v = (s + row_bias[i]) * row_scale[i],
// then ReLU, into `real`; or store s as it is into `sums`.
struct IntegerGemmEpilogue {
    const std::int32_t* row_bias = nullptr;  // m values, or null for none
    const float* row_scale = nullptr;        // m values
    bool relu = false;
    std::uint8_t* quantized = nullptr;  // exactly one of quantized, real and sums
    int zero_point = 0;
    float* real = nullptr;
    std::int32_t* sums = nullptr;
    int ldc = 0;
};

// Packs A (m x k, row-major) once for the same table's packed-A GEMM of its type; returns the elements the packed
// matrix needs, and with packed == nullptr only computes that. s8 weights must lie in [-127, 127].
using GemmPackAS8 = std::size_t (*)(int m, int k, const std::int8_t* a, int lda, std::int8_t* packed);
using GemmPackAS16 = std::size_t (*)(int m, int k, const std::int16_t* a, int lda, std::int16_t* packed);
// Bytes of workspace an integer GEMM of these sizes needs (64-byte aligned, for this call alone).
using GemmWorkspaceInt = std::size_t (*)(int m, int n, int k);
// C = A x op(B) in exact int32 sums, then the epilogue. op(B) is k x n (B is stored n x k when transpose_b). s8:
// B holds 7-bit activations. s16: any values whose pair products sum within int32 (the int8 Winograd's transformed
// weights and inputs stay below 2^11). Every arch's result equals the reference's bit for bit.
using GemmPackedAS8 = void (*)(bool transpose_b, int m, int n, int k, const std::int8_t* packed_a,
                               const std::uint8_t* b, int ldb, const IntegerGemmEpilogue& epilogue,
                               unsigned char* workspace);
using GemmPackedAS16 = void (*)(bool transpose_b, int m, int n, int k, const std::int16_t* packed_a,
                                const std::int16_t* b, int ldb, const IntegerGemmEpilogue& epilogue,
                                unsigned char* workspace);
// The s8 GEMM of a 3x3 convolution with stride 1 and padding 1: C = A x im2col(x), x `channels` planes of height x
// width 7-bit activations read as `padding` outside the image, A (m x 9 channels, im2col's depth order) packed by
// GemmConv3x3PackAS8 (returns the elements; with packed == nullptr only computes that: an arch may order the depth
// its own way); B is read straight from x, without an im2col matrix in between. C is m x (height x width), or with
// max_pool_2x2 its 2x2, stride-2 max pool, m x (height / 2 x width / 2) rounded down: the pool of the sums, then the
// epilogue, whose outputs are the pool of the unpooled ones' as it never decreases (row scales are not negative). The
// workspace's bytes (64-byte aligned) come from GemmConv3x3WorkspaceS8, for either. The products come in one of two
// orders, the same bits either way, A packed for the one it runs in (a caller keeps the faster on its shape):
// ByColumns, vectors of output positions against broadcast weights; ByPositions, where the arch's tile has it (AVX-512
// VNNI's), positions broadcast against vectors of output channels, so that no lane is spent on the border, the end of
// a row or an output the pool drops (an image a few positions wide). Elsewhere ByPositions runs as ByColumns.
enum class Conv3x3Order { ByColumns, ByPositions };
using GemmConv3x3PackAS8 = std::size_t (*)(int m, int channels, Conv3x3Order order, const std::int8_t* a,
                                           std::int8_t* packed);
using GemmConv3x3WorkspaceS8 = std::size_t (*)(int m, int channels, int height, int width);
using GemmConv3x3S8 = void (*)(int m, int channels, int height, int width, Conv3x3Order order,
                               const std::int8_t* packed_a, const std::uint8_t* x, std::uint8_t padding,
                               bool max_pool_2x2, const IntegerGemmEpilogue& epilogue, unsigned char* workspace);
// For a B that several products share (the int8 Winograd's, one per block of output channels): op(B) packed once
// (returns the elements it needs; with packed == nullptr only computes that), then products of packed A and B.
using GemmPackBS16 = std::size_t (*)(bool transpose_b, int n, int k, const std::int16_t* b, int ldb,
                                     std::int16_t* packed);
using GemmPackedABS16 = void (*)(int m, int n, int k, const std::int16_t* packed_a, const std::int16_t* packed_b,
                                 const IntegerGemmEpilogue& epilogue);

// The FMA peak probe: `iterations` rounds of kFmaPeakChains independent chains x <- x * kFmaPeakMultiplier +
// kFmaPeakAddend from x = fma_peak_chain_start(start, chain), no memory traffic. `value` is the mean final x
// over all chains and lanes, `flops` the work done; a benchmark divides flops by the time taken.
struct FmaPeakResult {
    double value;
    double flops;
};
inline constexpr int kFmaPeakChains = 12;
inline constexpr float kFmaPeakMultiplier = 0.9999f;  // with the addend, x converges to 1 and never underflows
inline constexpr float kFmaPeakAddend = 1e-4f;
inline constexpr float fma_peak_chain_start(float start, int chain) { return start + 0.01f * chain; }
using FmaPeakF32 = FmaPeakResult (*)(long iterations, float start);

// One kernel per op: the functions callers use.
struct KernelTable {
    std::string name;  // the arch of a per-arch table; for the default, the arch every op chose, or "mixed"
    std::string kernels_used;  // "gemm_f32 avx2, max_pool_2x2_f32 avx2, ...", for `edgeqc --version` and benchmarks
    // Significant bits of the operands the float GEMMs multiply: 24 (f32), or 8 where training swapped in bf16
    // products; callers choose numerically gentler algorithms for the fewer bits.
    int product_bits = 24;
    GemmF32 gemm_f32;
    GemmWorkspaceF32 gemm_workspace_f32;
    GemmPackAF32 gemm_pack_a_f32;
    GemmPackedAF32 gemm_packed_a_f32;
    GemmPackANarrowF32 gemm_pack_a_narrow_f32;
    GemmNarrowF32 gemm_narrow_f32;
    int gemm_narrow_rows_f32 = 1;  // rows of a narrow panel: rows from a multiple of it on start at packed_a + row x k
    GemmConv3x3PackAF32 gemm_conv3x3_pack_a_f32;
    GemmConv3x3WorkspaceF32 gemm_conv3x3_workspace_f32;
    GemmConv3x3F32 gemm_conv3x3_f32;
    MaxPool2x2F32 max_pool_2x2_f32;
    MaxPool2x2U8 max_pool_2x2_u8;
    QuantizeU8 quantize_u8;
    WinogradInputRowF32 winograd_input_row_f32;
    WinogradOutputRowF32 winograd_output_row_f32;
    WinogradGradientRowF32 winograd_gradient_row_f32;
    WinogradInputRowF32 winograd_f4_input_row_f32;
    WinogradOutputRowF32 winograd_f4_output_row_f32;
    FmaPeakF32 fma_peak_f32;
    GemmPackAS8 gemm_pack_a_s8;
    GemmWorkspaceInt gemm_workspace_s8;
    GemmPackedAS8 gemm_packed_a_s8;
    GemmConv3x3PackAS8 gemm_conv3x3_pack_a_s8;
    GemmConv3x3WorkspaceS8 gemm_conv3x3_workspace_s8;
    GemmConv3x3S8 gemm_conv3x3_s8;
    GemmPackAS16 gemm_pack_a_s16;
    GemmWorkspaceInt gemm_workspace_s16;
    GemmPackedAS16 gemm_packed_a_s16;
    GemmPackBS16 gemm_pack_b_s16;
    GemmPackedABS16 gemm_packed_ab_s16;
};

// The CPU checks of kernel lists: every CPU, (x86-64) AVX2 with FMA, AVX-512 F/CD/DQ/BW/VL, AVX-512 BW with VNNI
// and the same with BF16, AMX-INT8 and AMX-BF16 with the OS's permission, and (AArch64) the ARMv8.2 dot product.
bool any_cpu();
bool cpu_has_avx2_fma();
bool cpu_has_avx512();
bool cpu_has_avx512_vnni();
bool cpu_has_avx512_bf16();
bool cpu_has_amx_int8();
bool cpu_has_amx_bf16();
bool cpu_has_dotprod();

// One line of a kernel list: an implementation of op `op` on `type` for `arch`, run only where cpu_supports()
// says so; install() puts its functions into a table (KernelTable here; training keeps a list of its own for the
// optimizer's kernels, optim/training_kernels.hpp, so that the runtime links none of them).
template <class Table>
struct KernelListing {
    const char* op;  // "gemm", "max_pool_2x2", "winograd_rows", "fma_peak"
    DataType type;
    // "amx_int8", "avx512_vnni", "avx512", "avx2", "sse2", "neon64", "neon64_dotprod", "scalar" (the reference)
    const char* arch;
    bool (*cpu_supports)();
    void (*install)(Table& table);
};
// The runtime's list, best first within each op.
const std::vector<KernelListing<KernelTable>>& kernel_list();

// For every op of `list`, its first runnable listing for `arch` if there is one, else its first runnable listing
// (the best for this CPU); an empty arch takes each op's best. The table is named `arch`, or after the one arch all
// its ops chose, or "mixed". Dispatch builds every table through this; tests give it lists of their own. Table
// needs the members `name` and `kernels_used`.
template <class Table>
Table assemble_kernel_table(const std::vector<KernelListing<Table>>& list, const std::string& arch) {
    const auto same_op = [](const KernelListing<Table>& a, const KernelListing<Table>& b) {
        return std::string(a.op) == b.op && a.type == b.type;
    };
    Table table{};
    std::vector<std::string> chosen_arches;
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (std::any_of(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(i),
                        [&](const KernelListing<Table>& earlier) { return same_op(earlier, list[i]); }))
            continue;  // this op is done
        const KernelListing<Table>* chosen = nullptr;
        for (const KernelListing<Table>& candidate : list) {
            if (!same_op(candidate, list[i]) || !candidate.cpu_supports()) continue;
            if (!chosen || (arch == candidate.arch && arch != chosen->arch)) chosen = &candidate;
        }
        chosen->install(table);
        if (!table.kernels_used.empty()) table.kernels_used += ", ";
        table.kernels_used += std::string(chosen->op) + "_" + data_type_name(chosen->type) + " " + chosen->arch;
        if (std::find(chosen_arches.begin(), chosen_arches.end(), chosen->arch) == chosen_arches.end())
            chosen_arches.emplace_back(chosen->arch);
    }
    table.name = !arch.empty() ? arch : chosen_arches.size() == 1 ? chosen_arches.front() : "mixed";
    return table;
}

// One table per arch of `list` that this CPU runs, in list order (what available_kernel_tables() lists).
template <class Table>
std::vector<Table> arch_tables(const std::vector<KernelListing<Table>>& list) {
    std::vector<std::string> arches;
    for (const KernelListing<Table>& listing : list)
        if (listing.cpu_supports() && std::find(arches.begin(), arches.end(), listing.arch) == arches.end())
            arches.emplace_back(listing.arch);
    std::vector<Table> tables;
    for (const std::string& arch : arches) tables.push_back(assemble_kernel_table(list, arch));
    return tables;
}

template <class Table>
std::vector<const Table*> pointers_to(const std::vector<Table>& tables) {
    std::vector<const Table*> pointers;
    for (const Table& table : tables) pointers.push_back(&table);
    return pointers;
}

// The reference table: plain loops, the oracle every faster kernel is tested against.
const KernelTable& reference_kernels();
// One table per arch in the kernel list that this CPU runs, best first: each op its kernel for that arch, or the
// op's best runnable kernel where the arch has none. Tests and benchmarks run every listed kernel through these.
const std::vector<const KernelTable*>& available_kernel_tables();
// The active table: each op's best kernel for this CPU. EDGEQC_ARCH=<arch> in the environment selects that arch's
// table instead (e.g. EDGEQC_ARCH=scalar).
const KernelTable& kernels();
// Switches the active table to an arch's (tests use it to run every path); throws edgeqc::Error if unknown.
void select_kernels(const std::string& arch);

}  // namespace edgeqc
