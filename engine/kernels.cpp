// The kernel tables this build carries and the one-time choice between them: the only place that asks the
// CPU what it supports.
#include "engine/kernels.hpp"

#include <cstdlib>

#include "engine/error.hpp"
#include "engine/kernels/adam_f32.hpp"
#include "engine/kernels/fma_peak_f32.hpp"
#include "engine/kernels/gemm_f32.hpp"
#include "engine/kernels/max_pool_f32.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

void gemm_f32_reference(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int,
                        const GemmEpilogue&, float*);
std::size_t gemm_workspace_f32_reference(int, int, int, bool);
std::size_t gemm_pack_a_f32_reference(bool, int, int, const float*, int, float*);
void gemm_packed_a_f32_reference(bool, int, int, int, float, const float*, const float*, int, float, float*, int,
                                 const GemmEpilogue&, float*);
void max_pool_2x2_f32_reference(const float*, int, int, int, float*, std::uint32_t*);
void adam_f32_reference(const AdamStepF32&, std::ptrdiff_t, float*, const float*, float*, float*);
FmaPeakResult fma_peak_f32_reference(long iterations, float start);

namespace {

template <class Arch>
void packed_gemm_f32(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                     float* workspace) {
    PackedGemmF32<Arch>{}(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, workspace);
}

template <class Arch>
std::size_t gemm_workspace_f32(int m, int n, int k, bool a_packed) {
    return PackedGemmF32<Arch>{}.workspace_floats(m, n, k, a_packed);
}

template <class Arch>
std::size_t gemm_pack_a_f32(bool transpose_a, int m, int k, const float* a, int lda, float* packed) {
    return PackedGemmF32<Arch>{}.pack_a(transpose_a, m, k, a, lda, packed);
}

template <class Arch>
void gemm_packed_a_f32(bool transpose_b, int m, int n, int k, float alpha, const float* packed_a, const float* b,
                       int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue, float* workspace) {
    PackedGemmF32<Arch>{}.multiply(false, transpose_b, m, n, k, alpha, nullptr, 0, packed_a, b, ldb, beta, c, ldc,
                                   epilogue, workspace);
}

template <class Arch>
void max_pool_2x2_f32(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners) {
    SimdMaxPool2x2F32<Arch>{}(x, planes, height, width, y, winners);
}

template <class Arch>
void adam_f32(const AdamStepF32& step, std::ptrdiff_t n, float* parameters, const float* gradients, float* m,
              float* v) {
    SimdAdamF32<Arch>{}(step, n, parameters, gradients, m, v);
}

template <class Arch>
FmaPeakResult fma_peak_f32(long iterations, float start) {
    return FmaChainsF32<Arch>{}(iterations, start);
}

bool any_cpu() { return true; }

// Every SIMD table is the same set of generic kernels instantiated for one arch.
template <class Arch>
constexpr KernelTable simd_kernel_table(const char* name, bool (*cpu_supports)()) {
    return {name,
            cpu_supports,
            packed_gemm_f32<Arch>,
            gemm_workspace_f32<Arch>,
            gemm_pack_a_f32<Arch>,
            gemm_packed_a_f32<Arch>,
            max_pool_2x2_f32<Arch>,
            adam_f32<Arch>,
            fma_peak_f32<Arch>};
}

const KernelTable kScalarTable{"scalar",
                               any_cpu,
                               gemm_f32_reference,
                               gemm_workspace_f32_reference,
                               gemm_pack_a_f32_reference,
                               gemm_packed_a_f32_reference,
                               max_pool_2x2_f32_reference,
                               adam_f32_reference,
                               fma_peak_f32_reference};
#if defined(__x86_64__)
bool cpu_has_avx2_fma() { return xsimd::available_architectures().fma3_avx2; }
const KernelTable kAvx2Table = simd_kernel_table<xsimd::fma3<xsimd::avx2>>("avx2", cpu_has_avx2_fma);
const KernelTable kSse2Table = simd_kernel_table<xsimd::sse2>("sse2", any_cpu);
const KernelTable* const kBuiltTables[] = {&kAvx2Table, &kSse2Table, &kScalarTable};
#elif defined(__aarch64__)
const KernelTable kNeon64Table = simd_kernel_table<xsimd::neon64>("neon64", any_cpu);
const KernelTable* const kBuiltTables[] = {&kNeon64Table, &kScalarTable};
#else
const KernelTable* const kBuiltTables[] = {&kScalarTable};
#endif

const KernelTable* find_table(const std::string& name) {
    for (const KernelTable* table : available_kernel_tables())
        if (name == table->name) return table;
    return nullptr;
}

const KernelTable* initial_table() {
    const char* forced = std::getenv("EDGEQC_ARCH");
    if (forced && *forced) {
        if (const KernelTable* table = find_table(forced)) return table;
        throw Error(std::string("EDGEQC_ARCH='") + forced + "' names no kernel set this build can run here");
    }
    return available_kernel_tables().front();
}

const KernelTable*& active_table() {
    static const KernelTable* table = initial_table();
    return table;
}
}  // namespace

const KernelTable& reference_kernels() { return kScalarTable; }

const std::vector<const KernelTable*>& available_kernel_tables() {
    static const std::vector<const KernelTable*> tables = [] {
        std::vector<const KernelTable*> runnable;
        for (const KernelTable* table : kBuiltTables)
            if (table->cpu_supports()) runnable.push_back(table);
        return runnable;
    }();
    return tables;
}

const KernelTable& kernels() { return *active_table(); }

void select_kernels(const std::string& name) {
    const KernelTable* table = find_table(name);
    if (!table) throw Error("no kernel set named '" + name + "' in this build for this CPU");
    active_table() = table;
}

}  // namespace edgeqc
