/*
 * objload.c — how an object file becomes callable code. The native tier
 * caches what LLVM compiles as x86-64 ELF relocatable objects (ET_REL, code
 * model small, PIC); this file loads one into the process without LLVM and
 * without the system's dynamic linker.
 *
 * Every allocatable section goes into ONE anonymous mapping, grouped by the
 * rights it will end with, each group starting on its own page:
 *
 *   [ code sections | call stubs ][ read-only data | GOT ][ writable data ]
 *     read + execute                read                   read + write
 *
 * The mapping is read+write while sections are copied in and relocations
 * applied; then mprotect gives each group its final rights. No page is ever
 * writable and executable at once, and no icache flush is needed on x86.
 * .data.rel.ro (pointers the compiler knows are constant once relocated,
 * e.g. a const table of function pointers under -fPIC) is flagged writable
 * only so a dynamic linker can relocate it; we relocate before mprotect, so
 * it goes with the read-only data, as RELRO does for shared objects.
 *
 * Symbols a relocation names that the object does not define are asked of
 * the caller's resolve callback (once each, lazily: a symbol no loaded
 * relocation uses is never resolved). Those addresses may be anywhere, so:
 *   - a call or jump (R_X86_64_PLT32; R_X86_64_PC32 when the field is the
 *     operand of call/jmp/jcc rel32 and the target is out of reach) goes to
 *     a stub in the code group: `jmp *0(%rip)` then the 8-byte address;
 *   - R_X86_64_GOTPCREL[X] (a load of an address, any symbol) reads one
 *     8-byte slot per symbol in the read-only group; the instruction is not
 *     rewritten;
 *   - R_X86_64_64 / PC64 get the address itself; R_X86_64_32 / 32S / PC32
 *     data references get it only if the value fits, else the load fails
 *     naming the symbol. An object with 32 / 32S relocations (-fno-pic
 *     code) is mapped in the low 2 GiB (MAP_32BIT) when the kernel allows.
 *
 * Not loaded: non-allocatable sections (.comment, .symtab, .llvm_addrsig,
 * debug info...), notes, and .eh_frame with the relocations that apply to
 * it. Nothing unwinds through this code with the DWARF unwinder: wasm code
 * does not throw C++ exceptions, and leaving a trap is a return or a
 * longjmp, neither of which reads unwind tables. Loading .eh_frame would
 * cost memory per object and, to be of any use, a __register_frame call we
 * would also have to undo on free. Refused with a message: SHT_REL, section
 * groups (COMDAT), thread-local sections and symbols, common symbols,
 * IFUNCs, extended section numbering, init/fini arrays, any other
 * allocatable section type, any other relocation type.
 *
 * PC tables: a section named ENG_OBJ_PC_SECTION, as LLVM emits it for
 * `!pcsections` metadata and objpack.c stores it, lists instruction
 * offsets in a code section, each a 32-bit word with bit 31 set, followed
 * by the 32-bit value the metadata attached (below 2^31), which applies to
 * every offset since the previous value. It is not allocatable: the loader
 * reads it from the file into a sorted table (eng_obj_pc_value) and does
 * not map it.
 *
 * The bytes are untrusted (they come from a disk cache): every offset,
 * size, index and count is checked before use, with overflow-checked
 * arithmetic; headers, symbols and relocations are read by memcpy, so the
 * input need not be aligned. Loads share no state: distinct objects may be
 * loaded and freed on several threads at once; a loaded object is
 * immutable, so eng_obj_symbol may be called from any thread.
 */
#define _GNU_SOURCE
#include "engine/internal.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define OBJ_MAX_ALIGN 4096u                     /* largest sh_addralign accepted */
#define OBJ_MAX_MAP_BYTES ((size_t)1 << 30)     /* bounds NOBITS sizes, which cost no file bytes */
#define OBJ_STUB_BYTES 16u                      /* ff 25 00000000 <addr8> cc cc */
#define OBJ_GOT_BYTES 8u
#define OBJ_NONE UINT32_MAX

/* Permission groups, in mapping order; GRP_NONE: section not loaded. */
enum { GRP_NONE, GRP_EXEC, GRP_RO, GRP_RW, GRP_COUNT };

/* What a symbol is, after checking (sym_info_t.kind). */
enum { SYM_NULL, SYM_DEFINED, SYM_ABS, SYM_UNDEF, SYM_EXTERN, SYM_UNLOADED };

typedef struct sym_info {
    uint8_t kind;        /* SYM_* */
    uint8_t type;        /* STT_* */
    bool local;
    uint16_t sec;        /* SYM_DEFINED / SYM_UNLOADED */
    uint64_t value;      /* section offset, absolute value or resolved address */
    uint64_t size;       /* st_size */
    const char *name;    /* in the input's string table; valid during the load only */
    uint32_t got, stub;  /* slot indices or OBJ_NONE */
} sym_info_t;

typedef struct obj_name {
    const char *name;    /* in eng_obj.strings */
    void *addr;
    bool local;
} obj_name_t;

typedef struct obj_func {
    uintptr_t start, end; /* [start, end) */
    const char *name;     /* in eng_obj.strings */
} obj_func_t;

typedef struct obj_pc {
    uint32_t off;         /* of the instruction, from the start of the mapping */
    uint32_t value;
} obj_pc_t;

struct eng_obj {
    uint8_t *map;        /* the mapping; everything below is immutable after load */
    size_t map_bytes;
    size_t code_bytes;   /* the executable part, at the start of map */
    uint32_t nnames;
    obj_name_t *names;   /* sorted by name, globals before locals of the same name */
    uint32_t nfuncs;
    obj_func_t *funcs;   /* function symbols, sorted by address (eng_obj_function_at) */
    char *strings;
    uint32_t npcs;
    obj_pc_t *pcs;       /* the PC table, sorted by offset (eng_obj_pc_value) */
};

/* State of one load. */
typedef struct ld {
    const uint8_t *bytes;
    size_t len;
    Elf64_Shdr *sh;      /* copy of the section header table */
    uint32_t nsec;
    const char *shstr;   /* section names */
    size_t shstr_len;
    uint8_t *grp;        /* [nsec] GRP_* */
    size_t *off;         /* [nsec] offset of a loaded section in the mapping */
    uint32_t symtab;     /* section index, 0 when none */
    uint32_t nsyms;
    sym_info_t *syms;
    uint32_t nstubs, ngot;
    size_t stubs_off, got_off;  /* in the mapping */
    size_t ro_start, rw_start;  /* where the read-only and writable groups start */
    bool low;            /* has 32 / 32S relocations: map in the low 2 GiB */
    uint8_t *map;
    size_t map_bytes;
    eng_obj_resolve_fn resolve;
    void *ud;
    char *err;
    size_t errlen;
} ld_t;

static bool ld_fail(ld_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool ld_fail(ld_t *ld, const char *fmt, ...)
{
    if (ld->err && ld->errlen) {
        int n = snprintf(ld->err, ld->errlen, "object: ");
        if (n >= 0 && (size_t)n < ld->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return false;
}

/* The NUL-terminated string at off in a string table, or NULL when off is
 * outside it or no NUL follows within it. */
static const char *str_at(const char *tab, size_t tab_len, uint64_t off)
{
    if (!tab || off >= tab_len || !memchr(tab + off, 0, tab_len - off))
        return NULL;
    return tab + off;
}

/* Names were all checked by ld_headers. */
static const char *sec_name(const ld_t *ld, uint32_t i) { return ld->shstr + ld->sh[i].sh_name; }

static const char *sym_label(const ld_t *ld, uint32_t i)
{
    const sym_info_t *s = &ld->syms[i];
    if (s->name && s->name[0])
        return s->name;
    if (s->type == STT_SECTION && s->sec < ld->nsec)
        return sec_name(ld, s->sec);
    return "(unnamed)";
}

static size_t round_up(size_t v, size_t align) { return (v + align - 1) & ~(align - 1); }

/* ELF header, section header table, section bounds and names. */
static bool ld_headers(ld_t *ld)
{
    Elf64_Ehdr eh;
    if (ld->len < sizeof eh)
        return ld_fail(ld, "%zu bytes is too short for an ELF header", ld->len);
    memcpy(&eh, ld->bytes, sizeof eh);
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return ld_fail(ld, "not an ELF file (bad magic)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return ld_fail(ld, "ELF class %u is not ELFCLASS64", eh.e_ident[EI_CLASS]);
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return ld_fail(ld, "ELF data encoding %u is not little-endian", eh.e_ident[EI_DATA]);
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return ld_fail(ld, "ELF version %u/%u is not EV_CURRENT", eh.e_ident[EI_VERSION], eh.e_version);
    if (eh.e_type != ET_REL)
        return ld_fail(ld, "e_type %u is not ET_REL (a relocatable object)", eh.e_type);
    if (eh.e_machine != EM_X86_64)
        return ld_fail(ld, "machine %u is not EM_X86_64", eh.e_machine);
    if (eh.e_ehsize != sizeof eh || eh.e_shentsize != sizeof(Elf64_Shdr))
        return ld_fail(ld, "header size %u or section header size %u is wrong", eh.e_ehsize,
                       eh.e_shentsize);
    if (eh.e_shnum == 0)
        return ld_fail(ld, "no section header table (or extended numbering, not supported)");
    if (eh.e_shoff > ld->len || (size_t)eh.e_shnum * sizeof(Elf64_Shdr) > ld->len - eh.e_shoff)
        return ld_fail(ld, "section header table (offset 0x%llx, %u entries) beyond the file (%zu bytes)",
                       (unsigned long long)eh.e_shoff, eh.e_shnum, ld->len);
    if (eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= eh.e_shnum)
        return ld_fail(ld, "section name table index %u out of range (%u sections)", eh.e_shstrndx,
                       eh.e_shnum);
    ld->nsec = eh.e_shnum;
    ld->sh = malloc(ld->nsec * sizeof *ld->sh);
    ld->grp = calloc(ld->nsec, 1);
    ld->off = calloc(ld->nsec, sizeof *ld->off);
    if (!ld->sh || !ld->grp || !ld->off)
        return ld_fail(ld, "out of memory");
    memcpy(ld->sh, ld->bytes + eh.e_shoff, ld->nsec * sizeof *ld->sh);

    for (uint32_t i = 1; i < ld->nsec; i++) {
        const Elf64_Shdr *s = &ld->sh[i];
        if (s->sh_type != SHT_NOBITS && s->sh_type != SHT_NULL &&
            (s->sh_offset > ld->len || s->sh_size > ld->len - s->sh_offset))
            return ld_fail(ld, "section %u: bytes (offset 0x%llx, 0x%llx bytes) beyond the file (%zu bytes)",
                           i, (unsigned long long)s->sh_offset, (unsigned long long)s->sh_size, ld->len);
    }
    const Elf64_Shdr *ss = &ld->sh[eh.e_shstrndx];
    if (ss->sh_type != SHT_STRTAB)
        return ld_fail(ld, "section name table (section %u) is not SHT_STRTAB", eh.e_shstrndx);
    ld->shstr = (const char *)ld->bytes + ss->sh_offset;
    ld->shstr_len = ss->sh_size;
    for (uint32_t i = 0; i < ld->nsec; i++)
        if (!str_at(ld->shstr, ld->shstr_len, ld->sh[i].sh_name))
            return ld_fail(ld, "section %u: name offset 0x%x outside the section name table", i,
                           ld->sh[i].sh_name);
    return true;
}

/* Decides which sections are loaded, and in which group. */
static bool ld_sections(ld_t *ld)
{
    for (uint32_t i = 1; i < ld->nsec; i++) {
        const Elf64_Shdr *s = &ld->sh[i];
        const char *name = sec_name(ld, i);
        switch (s->sh_type) {
        case SHT_REL:
            return ld_fail(ld, "section %s: SHT_REL relocations are not supported (SHT_RELA only)", name);
        case SHT_GROUP:
            return ld_fail(ld, "section %s: section groups (COMDAT) are not supported", name);
        case SHT_SYMTAB_SHNDX:
            return ld_fail(ld, "section %s: extended section indices are not supported", name);
        case SHT_SYMTAB:
            if (ld->symtab)
                return ld_fail(ld, "section %s: a second symbol table", name);
            ld->symtab = i;
            break;
        }
        if (!(s->sh_flags & SHF_ALLOC))
            continue;
        /* Skipped, with their relocations: see the top of the file. */
        if (s->sh_type == SHT_X86_64_UNWIND || s->sh_type == SHT_NOTE ||
            (s->sh_type == SHT_PROGBITS && strcmp(name, ".eh_frame") == 0))
            continue;
        if (s->sh_type != SHT_PROGBITS && s->sh_type != SHT_NOBITS)
            return ld_fail(ld, "section %s: allocatable section of type 0x%x is not supported", name,
                           s->sh_type);
        if (s->sh_flags & SHF_TLS)
            return ld_fail(ld, "section %s: thread-local sections are not supported", name);
        if ((s->sh_flags & SHF_WRITE) && (s->sh_flags & SHF_EXECINSTR))
            return ld_fail(ld, "section %s: writable and executable", name);
        if (s->sh_addralign > OBJ_MAX_ALIGN || (s->sh_addralign & (s->sh_addralign - 1)))
            return ld_fail(ld, "section %s: alignment %llu is not a power of two up to %u", name,
                           (unsigned long long)s->sh_addralign, OBJ_MAX_ALIGN);
        if (s->sh_size > OBJ_MAX_MAP_BYTES)
            return ld_fail(ld, "section %s: 0x%llx bytes is too large", name,
                           (unsigned long long)s->sh_size);
        bool relro = strcmp(name, ".data.rel.ro") == 0 || strncmp(name, ".data.rel.ro.", 13) == 0;
        if (s->sh_flags & SHF_EXECINSTR)
            ld->grp[i] = GRP_EXEC;
        else if ((s->sh_flags & SHF_WRITE) && !relro)
            ld->grp[i] = GRP_RW;
        else
            ld->grp[i] = GRP_RO;
    }
    return true;
}

/* Checks the symbol table and every symbol in it. */
static bool ld_symbols(ld_t *ld)
{
    if (!ld->symtab)
        return true;
    const Elf64_Shdr *st = &ld->sh[ld->symtab];
    const char *name = sec_name(ld, ld->symtab);
    if (st->sh_entsize != sizeof(Elf64_Sym) || st->sh_size % sizeof(Elf64_Sym) != 0)
        return ld_fail(ld, "section %s: entry size %llu or size 0x%llx does not fit Elf64_Sym", name,
                       (unsigned long long)st->sh_entsize, (unsigned long long)st->sh_size);
    if (st->sh_size / sizeof(Elf64_Sym) >= OBJ_NONE)
        return ld_fail(ld, "section %s: too many symbols", name);
    ld->nsyms = (uint32_t)(st->sh_size / sizeof(Elf64_Sym));
    if (st->sh_link == 0 || st->sh_link >= ld->nsec || ld->sh[st->sh_link].sh_type != SHT_STRTAB)
        return ld_fail(ld, "section %s: string table index %u is not a string table", name, st->sh_link);
    if (st->sh_info > ld->nsyms)
        return ld_fail(ld, "section %s: first global symbol %u beyond the %u symbols", name, st->sh_info,
                       ld->nsyms);
    const Elf64_Shdr *strs = &ld->sh[st->sh_link];
    const char *str = (const char *)ld->bytes + strs->sh_offset;
    if (!(ld->syms = calloc(ld->nsyms ? ld->nsyms : 1, sizeof *ld->syms)))
        return ld_fail(ld, "out of memory");

    for (uint32_t i = 0; i < ld->nsyms; i++) {
        sym_info_t *s = &ld->syms[i];
        Elf64_Sym sym;
        memcpy(&sym, ld->bytes + st->sh_offset + (size_t)i * sizeof sym, sizeof sym);
        s->got = s->stub = OBJ_NONE;
        if (i == 0)
            continue;    /* the null symbol: value 0 */
        if (!(s->name = str_at(str, strs->sh_size, sym.st_name)))
            return ld_fail(ld, "symbol %u: name offset 0x%x outside the string table", i, sym.st_name);
        s->type = ELF64_ST_TYPE(sym.st_info);
        s->size = sym.st_size;
        unsigned bind = ELF64_ST_BIND(sym.st_info);
        s->local = bind == STB_LOCAL;
        if (s->type > STT_FILE || s->type == STT_COMMON)
            return ld_fail(ld, "symbol '%s': type %u is not supported", s->name, s->type);
        if (bind != STB_LOCAL && bind != STB_GLOBAL && bind != STB_WEAK)
            return ld_fail(ld, "symbol '%s': binding %u is not supported", s->name, bind);
        uint16_t shndx = sym.st_shndx;
        if (shndx == SHN_UNDEF) {
            s->kind = SYM_UNDEF;
        } else if (shndx == SHN_ABS) {
            s->kind = SYM_ABS;
            s->value = sym.st_value;
        } else if (shndx == SHN_COMMON) {
            return ld_fail(ld, "symbol '%s' is a common symbol (SHN_COMMON): not supported, "
                           "compile with -fno-common", s->name);
        } else if (shndx >= SHN_LORESERVE) {
            return ld_fail(ld, "symbol '%s': special section index 0x%x is not supported", s->name, shndx);
        } else if (shndx >= ld->nsec) {
            return ld_fail(ld, "symbol '%s': section index %u out of range (%u sections)", s->name, shndx,
                           ld->nsec);
        } else {
            s->sec = shndx;
            s->value = sym.st_value;
            s->kind = ld->grp[shndx] == GRP_NONE ? SYM_UNLOADED : SYM_DEFINED;
            if (s->kind == SYM_DEFINED && sym.st_value > ld->sh[shndx].sh_size)
                return ld_fail(ld, "symbol '%s': value 0x%llx beyond section %s (0x%llx bytes)", s->name,
                               (unsigned long long)sym.st_value, sec_name(ld, shndx),
                               (unsigned long long)ld->sh[shndx].sh_size);
        }
    }
    return true;
}

static uint64_t sym_addr(const ld_t *ld, const sym_info_t *s)
{
    if (s->kind == SYM_DEFINED)
        return (uint64_t)(uintptr_t)(ld->map + ld->off[s->sec]) + s->value;
    return s->value;    /* SYM_ABS, SYM_EXTERN; 0 for the null symbol */
}

static uint64_t stub_addr(const ld_t *ld, const sym_info_t *s)
{
    return (uint64_t)(uintptr_t)(ld->map + ld->stubs_off + (size_t)s->stub * OBJ_STUB_BYTES);
}

/* True when the 4-byte field at f is the rel32 of call, jmp or jcc. */
static bool field_is_branch(const uint8_t *f, uint64_t off, int64_t addend)
{
    if (addend != -4 || off < 1)
        return false;
    return f[-1] == 0xe8 || f[-1] == 0xe9 || (off >= 2 && f[-2] == 0x0f && (f[-1] & 0xf0) == 0x80);
}

static const char *reloc_name(uint32_t type)
{
    switch (type) {
    case R_X86_64_32: return "R_X86_64_32";
    case R_X86_64_32S: return "R_X86_64_32S";
    case R_X86_64_PC32: return "R_X86_64_PC32";
    case R_X86_64_PLT32: return "R_X86_64_PLT32";
    default: return "R_X86_64_GOTPCREL";
    }
}

/* One relocation: on the first pass (!apply) checks it, resolves its symbol
 * and counts stubs and GOT slots; on the second, writes the field. */
static bool ld_reloc(ld_t *ld, uint32_t rs, uint32_t tgt, unsigned long long k, const Elf64_Rela *r,
                     bool apply)
{
    uint32_t type = (uint32_t)ELF64_R_TYPE(r->r_info), si = (uint32_t)ELF64_R_SYM(r->r_info);
    const char *rname = sec_name(ld, rs);
    uint64_t width;
    switch (type) {
    case R_X86_64_NONE: width = 0; break;
    case R_X86_64_64: case R_X86_64_PC64: width = 8; break;
    case R_X86_64_PC32: case R_X86_64_PLT32: case R_X86_64_32: case R_X86_64_32S:
    case R_X86_64_GOTPCREL: case R_X86_64_GOTPCRELX: case R_X86_64_REX_GOTPCRELX: width = 4; break;
    default:
        return ld_fail(ld, "relocation %llu in %s: type %u is not supported", k, rname, type);
    }
    uint64_t size = ld->sh[tgt].sh_size;
    if (r->r_offset > size || width > size - r->r_offset)
        return ld_fail(ld, "relocation %llu in %s: offset 0x%llx beyond section %s (0x%llx bytes)", k, rname,
                       (unsigned long long)r->r_offset, sec_name(ld, tgt), (unsigned long long)size);
    if (si >= ld->nsyms)
        return ld_fail(ld, "relocation %llu in %s: symbol index %u out of range (%u symbols)", k, rname, si,
                       ld->nsyms);
    if (type == R_X86_64_NONE)
        return true;
    sym_info_t *s = &ld->syms[si];
    bool got = type == R_X86_64_GOTPCREL || type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
    if (s->kind == SYM_UNLOADED)
        return ld_fail(ld, "relocation %llu in %s: symbol '%s' is in section %s, which is not loaded", k,
                       rname, sym_label(ld, si), sec_name(ld, s->sec));

    if (!apply) {
        if (s->kind == SYM_UNDEF) {
            void *addr = s->name[0] && ld->resolve ? ld->resolve(ld->ud, s->name) : NULL;
            if (!addr)
                return ld_fail(ld, "relocation %llu in %s: undefined symbol '%s' is not resolved", k, rname,
                               sym_label(ld, si));
            s->kind = SYM_EXTERN;
            s->value = (uint64_t)(uintptr_t)addr;
        }
        if (got && s->got == OBJ_NONE)
            s->got = ld->ngot++;
        if ((type == R_X86_64_PLT32 || type == R_X86_64_PC32) && s->kind == SYM_EXTERN && s->stub == OBJ_NONE)
            s->stub = ld->nstubs++;
        if (type == R_X86_64_32 || type == R_X86_64_32S)
            ld->low = true;
        return true;
    }

    uint8_t *field = ld->map + ld->off[tgt] + r->r_offset;
    __int128 S = sym_addr(ld, s), A = r->r_addend, P = (uint64_t)(uintptr_t)field, v;
    switch (type) {
    case R_X86_64_64: v = S + A; break;
    case R_X86_64_PC64: v = S + A - P; break;
    case R_X86_64_32: case R_X86_64_32S: v = S + A; break;
    case R_X86_64_PLT32: v = (s->kind == SYM_EXTERN ? stub_addr(ld, s) : S) + A - P; break;
    case R_X86_64_PC32:
        v = S + A - P;
        if ((v < INT32_MIN || v > INT32_MAX) && s->kind == SYM_EXTERN &&
            field_is_branch(field, r->r_offset, r->r_addend))
            v = stub_addr(ld, s) + A - P;
        break;
    default: /* the GOTPCREL family */
        v = (__int128)(uintptr_t)(ld->map + ld->got_off + (size_t)s->got * OBJ_GOT_BYTES) + A - P;
        break;
    }
    if (width == 8) {
        uint64_t u = (uint64_t)v;
        memcpy(field, &u, 8);
        return true;
    }
    bool fits = type == R_X86_64_32 ? v >= 0 && v <= UINT32_MAX : v >= INT32_MIN && v <= INT32_MAX;
    if (!fits)
        return ld_fail(ld, "relocation %llu in %s: %s value for symbol '%s' does not fit in 32 bits", k,
                       rname, reloc_name(type), sym_label(ld, si));
    uint32_t u = (uint32_t)(uint64_t)v;
    memcpy(field, &u, 4);
    return true;
}

/* Every relocation section whose target is loaded, on one of the passes. */
static bool ld_relocs(ld_t *ld, bool apply)
{
    for (uint32_t i = 1; i < ld->nsec; i++) {
        const Elf64_Shdr *rs = &ld->sh[i];
        if (rs->sh_type != SHT_RELA)
            continue;
        const char *name = sec_name(ld, i);
        if (rs->sh_info == 0 || rs->sh_info >= ld->nsec)
            return ld_fail(ld, "section %s: target section %u out of range (%u sections)", name, rs->sh_info,
                           ld->nsec);
        uint32_t tgt = rs->sh_info;
        if (ld->grp[tgt] == GRP_NONE)
            continue;    /* relocations of a section we do not load (.eh_frame, debug info) */
        if (ld->sh[tgt].sh_type != SHT_PROGBITS)
            return ld_fail(ld, "section %s: relocates %s, which has no contents", name, sec_name(ld, tgt));
        if (!ld->symtab || rs->sh_link != ld->symtab)
            return ld_fail(ld, "section %s: symbol table index %u is not the symbol table", name, rs->sh_link);
        if (rs->sh_entsize != sizeof(Elf64_Rela) || rs->sh_size % sizeof(Elf64_Rela) != 0)
            return ld_fail(ld, "section %s: entry size %llu or size 0x%llx does not fit Elf64_Rela", name,
                           (unsigned long long)rs->sh_entsize, (unsigned long long)rs->sh_size);
        unsigned long long n = rs->sh_size / sizeof(Elf64_Rela);
        for (unsigned long long k = 0; k < n; k++) {
            Elf64_Rela r;
            memcpy(&r, ld->bytes + rs->sh_offset + k * sizeof r, sizeof r);
            if (!ld_reloc(ld, i, tgt, k, &r, apply))
                return false;
        }
    }
    return true;
}

/* Places the loaded sections, stubs and GOT, maps them and copies the
 * section contents in. */
static bool ld_map(ld_t *ld)
{
    size_t used[GRP_COUNT] = {0}, start[GRP_COUNT] = {0};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (page < OBJ_MAX_ALIGN)
        page = OBJ_MAX_ALIGN;
    for (uint32_t i = 1; i < ld->nsec; i++) {
        uint8_t g = ld->grp[i];
        if (g == GRP_NONE)
            continue;
        size_t align = ld->sh[i].sh_addralign ? (size_t)ld->sh[i].sh_addralign : 1;
        ld->off[i] = round_up(used[g], align);    /* both terms are bounded: no overflow */
        used[g] = ld->off[i] + ld->sh[i].sh_size;
        if (used[g] > OBJ_MAX_MAP_BYTES)
            return ld_fail(ld, "loaded sections exceed %zu bytes", OBJ_MAX_MAP_BYTES);
    }
    ld->stubs_off = round_up(used[GRP_EXEC], OBJ_STUB_BYTES);
    used[GRP_EXEC] = ld->stubs_off + (size_t)ld->nstubs * OBJ_STUB_BYTES;
    ld->got_off = round_up(used[GRP_RO], OBJ_GOT_BYTES);
    used[GRP_RO] = ld->got_off + (size_t)ld->ngot * OBJ_GOT_BYTES;
    start[GRP_RO] = round_up(used[GRP_EXEC], page);
    start[GRP_RW] = start[GRP_RO] + round_up(used[GRP_RO], page);
    ld->map_bytes = start[GRP_RW] + round_up(used[GRP_RW], page);
    if (ld->map_bytes > OBJ_MAX_MAP_BYTES)
        return ld_fail(ld, "loaded sections exceed %zu bytes", OBJ_MAX_MAP_BYTES);
    if (ld->map_bytes == 0)
        ld->map_bytes = page;
    ld->stubs_off += start[GRP_EXEC];
    ld->got_off += start[GRP_RO];
    ld->ro_start = start[GRP_RO];
    ld->rw_start = start[GRP_RW];

    void *p = MAP_FAILED;
    if (ld->low)    /* 32 / 32S relocations can only be satisfied in the low 2 GiB */
        p = mmap(NULL, ld->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (p == MAP_FAILED)
        p = mmap(NULL, ld->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        char eb[64];
        return ld_fail(ld, "mmap of %zu bytes failed: %s", ld->map_bytes, strerror_r(errno, eb, sizeof eb));
    }
    ld->map = p;
    for (uint32_t i = 1; i < ld->nsec; i++) {
        if (ld->grp[i] == GRP_NONE)
            continue;
        ld->off[i] += start[ld->grp[i]];
        if (ld->sh[i].sh_type == SHT_PROGBITS)    /* NOBITS: already zero */
            memcpy(ld->map + ld->off[i], ld->bytes + ld->sh[i].sh_offset, ld->sh[i].sh_size);
    }

    /* Stubs and GOT slots: every symbol that got one is resolved or defined. */
    for (uint32_t i = 0; i < ld->nsyms; i++) {
        const sym_info_t *s = &ld->syms[i];
        uint64_t a = sym_addr(ld, s);
        if (s->stub != OBJ_NONE) {
            uint8_t *st = ld->map + ld->stubs_off + (size_t)s->stub * OBJ_STUB_BYTES;
            static const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0}; /* jmp *0(%rip) */
            memcpy(st, jmp, 6);
            memcpy(st + 6, &a, 8);
            st[14] = st[15] = 0xcc;                                   /* int3 */
        }
        if (s->got != OBJ_NONE)
            memcpy(ld->map + ld->got_off + (size_t)s->got * OBJ_GOT_BYTES, &a, 8);
    }
    return true;
}

/* Final rights: code read+execute, read-only data and GOT read, the rest
 * stays read+write. */
static bool ld_protect(ld_t *ld)
{
    size_t ro = ld->ro_start, rw = ld->rw_start;
    char eb[64];
    if (ro && mprotect(ld->map, ro, PROT_READ | PROT_EXEC) != 0)
        return ld_fail(ld, "mprotect of the code (%zu bytes) failed: %s", ro, strerror_r(errno, eb, sizeof eb));
    if (rw > ro && mprotect(ld->map + ro, rw - ro, PROT_READ) != 0)
        return ld_fail(ld, "mprotect of the read-only data (%zu bytes) failed: %s", rw - ro,
                       strerror_r(errno, eb, sizeof eb));
    return true;
}

static int name_cmp(const void *a, const void *b)
{
    const obj_name_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->local - (int)y->local;
}

static int func_cmp(const void *a, const void *b)
{
    const obj_func_t *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Symbols eng_obj_symbol finds: named, defined, not section or file names. */
static bool sym_listed(const sym_info_t *s)
{
    return (s->kind == SYM_DEFINED || s->kind == SYM_ABS) && s->name[0] && s->type != STT_SECTION &&
           s->type != STT_FILE;
}

/* The lookup table of eng_obj_symbol, names copied. */
static bool ld_names(ld_t *ld, eng_obj_t *o)
{
    size_t n = 0, chars = 0;
    for (uint32_t i = 1; i < ld->nsyms; i++)
        if (sym_listed(&ld->syms[i])) {
            n++;
            chars += strlen(ld->syms[i].name) + 1;    /* bounded by the input's length */
        }
    o->names = malloc((n ? n : 1) * sizeof *o->names);
    o->strings = malloc(chars ? chars : 1);
    if (!o->names || !o->strings)
        return ld_fail(ld, "out of memory");
    o->funcs = malloc((n ? n : 1) * sizeof *o->funcs);
    if (!o->funcs)
        return ld_fail(ld, "out of memory");
    char *p = o->strings;
    for (uint32_t i = 1; i < ld->nsyms; i++) {
        const sym_info_t *s = &ld->syms[i];
        if (!sym_listed(s))
            continue;
        size_t l = strlen(s->name) + 1;
        memcpy(p, s->name, l);
        uintptr_t a = (uintptr_t)sym_addr(ld, s);
        o->names[o->nnames++] = (obj_name_t){p, (void *)a, s->local};
        /* A function's extent, when it lies in the code (for faults). */
        if (s->type == STT_FUNC && s->kind == SYM_DEFINED && s->size &&
            a >= (uintptr_t)ld->map && a - (uintptr_t)ld->map < ld->ro_start &&
            s->size <= ld->ro_start - (a - (uintptr_t)ld->map))
            o->funcs[o->nfuncs++] = (obj_func_t){a, a + (uintptr_t)s->size, p};
        p += l;
    }
    qsort(o->names, o->nnames, sizeof *o->names, name_cmp);
    qsort(o->funcs, o->nfuncs, sizeof *o->funcs, func_cmp);
    return true;
}

static int pc_cmp(const void *a, const void *b)
{
    const obj_pc_t *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Reads the PC tables, as objpack.c stores them: 32-bit words in a
 * section that is not loaded, whose sh_link is the code section they
 * describe. A word with bit 31 set is the offset of an instruction in that
 * section; any other word is the value of the instructions listed since
 * the previous value. */
static bool ld_pcs(ld_t *ld, eng_obj_t *o)
{
    /* Every table is checked before any is counted: a size is only
     * bounded by the file (ld_headers) once the type is PROGBITS. */
    size_t words = 0;
    for (uint32_t i = 1; i < ld->nsec; i++) {
        if (strcmp(sec_name(ld, i), ENG_OBJ_PC_SECTION) != 0)
            continue;
        const Elf64_Shdr *s = &ld->sh[i];
        if ((s->sh_flags & SHF_ALLOC) || s->sh_size % 4 != 0 || s->sh_type != SHT_PROGBITS)
            return ld_fail(ld, "section %s: not a stored table of 32-bit words", ENG_OBJ_PC_SECTION);
        if (s->sh_link == 0 || s->sh_link >= ld->nsec || ld->grp[s->sh_link] != GRP_EXEC)
            return ld_fail(ld, "section %s: its section %u is not loaded code", ENG_OBJ_PC_SECTION,
                           s->sh_link);
        words += s->sh_size / 4;
    }
    if (words == 0)
        return true;
    o->pcs = malloc(words * sizeof *o->pcs);
    if (!o->pcs)
        return ld_fail(ld, "out of memory");
    for (uint32_t i = 1; i < ld->nsec; i++) {
        if (strcmp(sec_name(ld, i), ENG_OBJ_PC_SECTION) != 0)
            continue;
        const Elf64_Shdr *s = &ld->sh[i];
        uint32_t code = s->sh_link;
        const uint8_t *sec = ld->bytes + s->sh_offset; /* in the file: ld_headers */
        uint32_t pending = o->npcs; /* the first address still without its value */
        for (size_t k = 0; k < s->sh_size / 4; k++) {
            uint32_t w;
            memcpy(&w, sec + 4 * k, 4);
            if (!(w & 0x80000000u)) {
                while (pending < o->npcs)
                    o->pcs[pending++].value = w;
                continue;
            }
            uint32_t off = w & 0x7fffffffu;
            if (off >= ld->sh[code].sh_size)
                return ld_fail(ld, "section %s: entry %zu points outside the code", ENG_OBJ_PC_SECTION, k);
            /* code sections start the mapping: well below 2^32 */
            o->pcs[o->npcs++] = (obj_pc_t){(uint32_t)(ld->off[code] + off), 0};
        }
        if (pending < o->npcs)
            return ld_fail(ld, "section %s: the last addresses have no value", ENG_OBJ_PC_SECTION);
    }
    qsort(o->pcs, o->npcs, sizeof *o->pcs, pc_cmp);
    return true;
}

eng_obj_t *eng_obj_load(const uint8_t *bytes, size_t len, eng_obj_resolve_fn resolve, void *ud, char *err,
                        size_t errlen)
{
    ld_t ld = {.bytes = bytes, .len = len, .resolve = resolve, .ud = ud, .err = err, .errlen = errlen};
    eng_obj_t *o = calloc(1, sizeof *o);
    bool ok = o != NULL || ld_fail(&ld, "out of memory");
    ok = ok && (bytes != NULL || ld_fail(&ld, "no bytes"));
    ok = ok && ld_headers(&ld) && ld_sections(&ld) && ld_symbols(&ld) && ld_relocs(&ld, false) &&
         ld_map(&ld) && ld_relocs(&ld, true);
    ok = ok && ld_protect(&ld) && ld_names(&ld, o) && ld_pcs(&ld, o);
    free(ld.sh);
    free(ld.grp);
    free(ld.off);
    free(ld.syms);
    if (!ok) {
        if (ld.map)
            munmap(ld.map, ld.map_bytes);
        if (o) {
            free(o->names);
            free(o->funcs);
            free(o->strings);
            free(o->pcs);
            free(o);
        }
        return NULL;
    }
    o->map = ld.map;
    o->map_bytes = ld.map_bytes;
    o->code_bytes = ld.ro_start;
    return o;
}

void *eng_obj_symbol(const eng_obj_t *o, const char *name)
{
    if (!o || !name)
        return NULL;
    size_t lo = 0, hi = o->nnames;    /* first entry with a name >= name */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(o->names[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < o->nnames && strcmp(o->names[lo].name, name) == 0 ? o->names[lo].addr : NULL;
}

size_t eng_obj_size_bytes(const eng_obj_t *o) { return o ? o->map_bytes : 0; }

void eng_obj_code(const eng_obj_t *o, uintptr_t *start, size_t *len)
{
    *start = (uintptr_t)o->map;
    *len = o->code_bytes;
}

const char *eng_obj_function_at(const eng_obj_t *o, uintptr_t addr)
{
    size_t lo = 0, hi = o->nfuncs;    /* first function starting after addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->funcs[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && addr < o->funcs[lo - 1].end ? o->funcs[lo - 1].name : NULL;
}

bool eng_obj_pc_value(const eng_obj_t *o, uintptr_t pc, uint32_t *value)
{
    if (pc < (uintptr_t)o->map || pc - (uintptr_t)o->map >= o->code_bytes)
        return false;
    uint32_t off = (uint32_t)(pc - (uintptr_t)o->map);
    size_t lo = 0, hi = o->npcs;    /* first entry with an offset >= off */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->pcs[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == o->npcs || o->pcs[lo].off != off)
        return false;
    *value = o->pcs[lo].value;
    return true;
}

void eng_obj_free(eng_obj_t *o)
{
    if (!o)
        return;
    munmap(o->map, o->map_bytes);
    free(o->names);
    free(o->funcs);
    free(o->strings);
    free(o->pcs);
    free(o);
}
