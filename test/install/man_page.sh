#!/usr/bin/env bash
# A manual page (provider-smartkey(7), smartkey-keyservice(8)) as the build
# generates it from the Markdown that engineers edit
# (docs/NAME.SECTION.md): `man -l` renders it, every section of the
# Markdown is a section of the page, and no Markdown syntax is left in the
# text a reader sees.
# Usage: man_page.sh PAGE MARKDOWN
source "$(dirname "$0")/../cli/lib.sh"
page=${1:?usage: $0 PAGE MARKDOWN}
markdown=${2:?usage: $0 PAGE MARKDOWN}
base=$(basename "$page")
name=${base%.*}
section=${base##*.}
title=$(tr '[:lower:]' '[:upper:]' <<<"$name" | sed 's/-/\\\\?-/g')
command -v man >/dev/null || fatal "missing tool: man (scripts/setup)"
WORK=$(mktemp -d -t smartkey-man.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

check "the page was generated" test -s "$page"
# (Fails when the Markdown was edited after the last build: rebuild.)
check "the page is up to date with its Markdown" test ! "$page" -ot "$markdown"
check "the page is roff with a ${name^^} $section title line" \
    grep -Eq "^\\.TH \"?$title\"? \"?$section\"?" "$page"

MANWIDTH=80 man -l "$page" >"$WORK/page.txt" 2>"$WORK/man.err"
rc=$?
check "man -l renders the page" test "$rc" -eq 0 -a -s "$WORK/page.txt"
# (troff's warnings about wide tables are not errors.)
check "man -l reports no error" bash -c "! grep -Eiq 'error' '$WORK/man.err'"

# The page's sections are the Markdown's "## " headings, outside code blocks.
sections=$(awk '/^```/ { code = !code } !code && /^## / { sub(/^## /, "");
    print }' "$markdown")
check "the Markdown has sections" test -n "$sections"
while IFS= read -r section; do
    [[ -n $section ]] || continue
    check "section '$section' is rendered" \
        grep -Fxq "$(tr '[:lower:]' '[:upper:]' <<<"$section")" \
        <(sed 's/[[:space:]]*$//' "$WORK/page.txt")
done <<<"$sections"

names_the_page() {
    grep -A2 '^NAME' "$WORK/page.txt" | grep -q -- "$name"
}
check "NAME says what the page is about" names_the_page
# (Code examples may hold "# comments", so headings are not looked for.)
no_markdown_left() {
    ! grep -Eq '^ *(```|\|?:?-{3,}:?\|)' "$WORK/page.txt"
}
check "no Markdown code fence or table rule is left" no_markdown_left
finish
