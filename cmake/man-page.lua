-- pandoc filter for the manual page: the Markdown's level-1 heading is the
-- document's own title line (the roff title comes from .TH metadata), and
-- its "## NAME"-style sections are the page's .SH sections.
function Header(h)
  if h.level == 1 then
    return {}
  end
  h.level = h.level - 1
  return h
end
