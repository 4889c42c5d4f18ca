/*
 * objpack.c — how a freshly compiled object is stored: its PC table
 * without relocations.
 *
 * LLVM emits the table for `!pcsections` (ENG_OBJ_PC_SECTION) as 32-bit
 * words in a data section: each instruction address is a PC-relative word
 * with an R_X86_64_PC32 relocation against the code section, each value a
 * plain word. A 4-byte word and its 24-byte RELA entry: in Lua's object
 * the relocations alone were 38% of its bytes. Before the object is
 * sealed, this file resolves every address word to its offset in the code
 * section, marked by bit 31 (values stay below 2^31), makes the table
 * non-allocatable (the loader reads it from the file, objload.c's
 * ld_pcs, and never maps it), and drops the relocation section's bytes,
 * leaving an empty SHT_NULL header in its place so that no section index
 * changes. The other sections are copied in file order with their
 * alignment, then the section headers.
 *
 * The input is LLVM's output in this process, but it is read with the
 * same care as the loader's: every offset, size and index is checked, and
 * anything unexpected fails with a message (the compile then fails)
 * rather than storing a table the loader would misread.
 */
#include "engine/internal.h"

#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool pack_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool pack_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(err, errlen, "native: storing the PC table: ");
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bool in_file(const Elf64_Shdr *s, size_t len)
{
    return s->sh_type == SHT_NOBITS || s->sh_type == SHT_NULL ||
           (s->sh_offset <= len && s->sh_size <= len - s->sh_offset);
}

/* Resolves the address words of table w (whose bytes are at tab) through
 * the relocation section r. */
static bool resolve_words(const uint8_t *in, const Elf64_Shdr *sh, uint32_t nsec, uint32_t w, uint32_t r,
                          uint8_t *tab, char *err, size_t errlen)
{
    const Elf64_Shdr *rs = &sh[r], *ws = &sh[w];
    uint32_t code = ws->sh_link, symtab = rs->sh_link;
    if (code == 0 || code >= nsec || sh[code].sh_type != SHT_PROGBITS || !(sh[code].sh_flags & SHF_EXECINSTR))
        return pack_fail(err, errlen, "its link %u is not a code section", code);
    if (symtab == 0 || symtab >= nsec || sh[symtab].sh_type != SHT_SYMTAB ||
        sh[symtab].sh_size % sizeof(Elf64_Sym) != 0)
        return pack_fail(err, errlen, "its relocations' symbol table %u is not one", symtab);
    if (rs->sh_size % sizeof(Elf64_Rela) != 0)
        return pack_fail(err, errlen, "relocation section size 0x%llx", (unsigned long long)rs->sh_size);
    size_t nsyms = sh[symtab].sh_size / sizeof(Elf64_Sym);
    for (size_t k = 0; k < rs->sh_size / sizeof(Elf64_Rela); k++) {
        Elf64_Rela rel;
        memcpy(&rel, in + rs->sh_offset + k * sizeof rel, sizeof rel);
        size_t sym_i = ELF64_R_SYM(rel.r_info);
        if (ELF64_R_TYPE(rel.r_info) != R_X86_64_PC32 || rel.r_offset % 4 != 0 ||
            rel.r_offset > ws->sh_size - 4 || sym_i >= nsyms)
            return pack_fail(err, errlen, "relocation %zu is not a PC32 word of the table", k);
        Elf64_Sym sym;
        memcpy(&sym, in + sh[symtab].sh_offset + sym_i * sizeof sym, sizeof sym);
        /* S + A is the instruction; the word held S + A - P. */
        int64_t at = (int64_t)sym.st_value + rel.r_addend;
        if (sym.st_shndx != code || at < 0 || (uint64_t)at >= sh[code].sh_size || at >= INT32_MAX)
            return pack_fail(err, errlen, "relocation %zu does not point into the code", k);
        uint32_t word = 0x80000000u | (uint32_t)at;
        memcpy(tab + rel.r_offset, &word, 4);
    }
    return true;
}

/* The table's section (0 when none) and the relocation section for it (0
 * when none). */
static bool find_table(const uint8_t *in, const Elf64_Shdr *sh, uint32_t nsec, uint32_t shstrndx,
                       uint32_t *w, uint32_t *r, char *err, size_t errlen)
{
    const Elf64_Shdr *names = &sh[shstrndx];
    *w = *r = 0;
    for (uint32_t i = 1; i < nsec; i++) {
        size_t at = sh[i].sh_name;
        const char *n = (const char *)in + names->sh_offset + at;
        if (names->sh_type != SHT_STRTAB || at >= names->sh_size || !memchr(n, '\0', names->sh_size - at) ||
            strcmp(n, ENG_OBJ_PC_SECTION) != 0)
            continue;
        if (*w)
            return pack_fail(err, errlen, "two sections named %s", ENG_OBJ_PC_SECTION);
        *w = i;
    }
    if (!*w)
        return true;
    if (sh[*w].sh_type != SHT_PROGBITS || sh[*w].sh_size % 4 != 0 || sh[*w].sh_size == 0)
        return pack_fail(err, errlen, "not a table of 32-bit words");
    for (uint32_t i = 1; i < nsec; i++) {
        if ((sh[i].sh_type != SHT_RELA && sh[i].sh_type != SHT_REL) || sh[i].sh_info != *w)
            continue;
        if (*r || sh[i].sh_type == SHT_REL)
            return pack_fail(err, errlen, "unexpected relocation section %u", i);
        *r = i;
    }
    return true;
}

/* Writes the object again: the ELF header, every section with bytes in
 * the file in file order (the table's bytes from tab), each at its
 * alignment, then the section headers. Same order and alignment, fewer
 * bytes: never larger than the input. */
static bool relayout(const uint8_t *in, size_t len, Elf64_Ehdr *eh, Elf64_Shdr *sh, uint32_t nsec,
                     uint32_t w, const uint8_t *tab, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    uint32_t *order = malloc(nsec * sizeof *order);
    size_t cap = len + 8;
    uint8_t *o = malloc(cap);
    if (!order || !o) {
        free(order);
        free(o);
        return pack_fail(err, errlen, "out of memory");
    }
    /* Insertion sort by offset (a few dozen sections); empty ones too, so
     * that their offsets stay inside the file. */
    uint32_t n = 0;
    for (uint32_t i = 1; i < nsec; i++) {
        if (sh[i].sh_type == SHT_NOBITS || sh[i].sh_type == SHT_NULL)
            continue;
        uint32_t j = n++;
        while (j > 0 && sh[order[j - 1]].sh_offset > sh[i].sh_offset) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t at = sizeof *eh;
    for (uint32_t k = 0; k < n; k++) {
        Elf64_Shdr *s = &sh[order[k]];
        size_t a = s->sh_addralign > 1 ? s->sh_addralign : 1;
        size_t start = (at + a - 1) / a * a;
        if (start > cap || s->sh_size > cap - start) {
            at = cap + 1; /* cannot happen (see above); refused below */
            break;
        }
        memset(o + at, 0, start - at);
        memcpy(o + start, order[k] == w ? tab : in + s->sh_offset, s->sh_size);
        s->sh_offset = start;
        at = start + s->sh_size;
    }
    size_t shoff = (at + 7) / 8 * 8;
    free(order);
    if (at > cap || shoff > cap || nsec * sizeof *sh > cap - shoff) {
        free(o);
        return pack_fail(err, errlen, "sections overlap");
    }
    memset(o + at, 0, shoff - at);
    memcpy(o + shoff, sh, nsec * sizeof *sh);
    eh->e_shoff = shoff;
    memcpy(o, eh, sizeof *eh);
    *out = o;
    *outlen = shoff + nsec * sizeof *sh;
    return true;
}

bool eng_obj_pack_pcs(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    Elf64_Ehdr eh;
    if (len < sizeof eh)
        return pack_fail(err, errlen, "not an ELF object");
    memcpy(&eh, in, sizeof eh);
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum ||
        eh.e_shoff > len || (size_t)eh.e_shnum * sizeof(Elf64_Shdr) > len - eh.e_shoff)
        return pack_fail(err, errlen, "bad section header table");
    uint32_t nsec = eh.e_shnum, w, r;
    Elf64_Shdr *sh = malloc(nsec * sizeof *sh);
    if (!sh)
        return pack_fail(err, errlen, "out of memory");
    memcpy(sh, in + eh.e_shoff, nsec * sizeof *sh);
    uint8_t *tab = NULL;
    bool ok = true;
    for (uint32_t i = 0; ok && i < nsec; i++)
        if (!in_file(&sh[i], len) || sh[i].sh_addralign > 4096 || (sh[i].sh_addralign & (sh[i].sh_addralign - 1)))
            ok = pack_fail(err, errlen, "section %u: bad offset, size or alignment", i);
    ok = ok && find_table(in, sh, nsec, eh.e_shstrndx, &w, &r, err, errlen);
    if (ok && w) {
        tab = malloc(sh[w].sh_size);
        ok = tab || pack_fail(err, errlen, "out of memory");
        if (ok)
            memcpy(tab, in + sh[w].sh_offset, sh[w].sh_size);
        ok = ok && (!r || resolve_words(in, sh, nsec, w, r, tab, err, errlen));
        sh[w].sh_flags &= ~(uint64_t)(SHF_ALLOC | SHF_WRITE | SHF_LINK_ORDER);
        if (r)
            sh[r] = (Elf64_Shdr){.sh_name = sh[r].sh_name, .sh_type = SHT_NULL};
    }
    ok = ok && relayout(in, len, &eh, sh, nsec, w, tab, out, outlen, err, errlen);
    free(tab);
    free(sh);
    return ok;
}
