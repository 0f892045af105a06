// The namespace every reference symbol lives in.
//
// The reference is compiled twice (decisions D6): vmem_reference, and vmem_reference_mutants
// with VMEM_MUTANTS=1, which adds the named faults. The two builds put their code in different
// inline namespaces, so a binary that links both never has one library's template instances
// silently replace the other's (a one-definition-rule violation the linker would not report).
// Code still spells every name as vmem::X.
#pragma once

#if !defined(VMEM_MUTANTS)
#error "VMEM_MUTANTS is set by the vmem_reference / vmem_reference_mutants targets: link one"
#endif

#if VMEM_MUTANTS
#define VMEM_NAMESPACE_BEGIN \
  namespace vmem {           \
  inline namespace mutants {
#else
#define VMEM_NAMESPACE_BEGIN \
  namespace vmem {           \
  inline namespace exact {
#endif
#define VMEM_NAMESPACE_END \
  }                        \
  }

VMEM_NAMESPACE_BEGIN
// True in the mutants build only; fault hooks test it first so the normal build compiles them away.
inline constexpr bool kMutantsBuild = VMEM_MUTANTS != 0;
VMEM_NAMESPACE_END
