// The kernel tables this build carries and the one-time choice between them.
#include "engine/kernels.hpp"

#include <cstdlib>

#include "engine/error.hpp"

namespace edgeqc {

void gemm_f32_reference(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);
void gemm_f32_eigen(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int);

namespace {
const KernelTable kScalarTable{"scalar", gemm_f32_reference};
const KernelTable kEigenTable{"eigen", gemm_f32_eigen};

const KernelTable* find_table(const std::string& name) {
    for (const KernelTable* table : available_kernel_tables())
        if (name == table->name) return table;
    return nullptr;
}

const KernelTable* initial_table() {
    const char* forced = std::getenv("EDGEQC_ARCH");
    if (forced && *forced) {
        if (const KernelTable* table = find_table(forced)) return table;
        throw Error(std::string("EDGEQC_ARCH='") + forced + "' names no kernel set of this build");
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
    static const std::vector<const KernelTable*> tables{&kEigenTable, &kScalarTable};
    return tables;
}

const KernelTable& kernels() { return *active_table(); }

void select_kernels(const std::string& name) {
    const KernelTable* table = find_table(name);
    if (!table) throw Error("no kernel set named '" + name + "' in this build");
    active_table() = table;
}

}  // namespace edgeqc
