"""An autograding step of the course's nbgrader config: flag a submission that changed or deleted a
read-only or test cell.

nbgrader's own ``OverwriteCells`` puts such cells back from the release before grading (so an
edited test cannot award points) and only logs a warning. This step runs just before it and makes
the edit visible: the submission is *flagged* in the gradebook (the formgrader lists it so), the
autograder logs which cells, and a note at the top of the graded notebook tells the student in the
feedback. Only the course folder's ``nbgrader_config.py`` imports this module.
"""

from __future__ import annotations

from nbformat.v4 import new_markdown_cell
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import NbGraderPreprocessor


def edited_cells(nb, source_cells) -> tuple[list[str], list[str]]:
    """``(changed, deleted)``: grade ids of the locked source cells (read-only or test) that the
    notebook ``nb`` holds with another checksum, and of those it no longer holds."""
    present = {cell.metadata.nbgrader["grade_id"]: cell for cell in nb.cells
               if "grade_id" in cell.metadata.get("nbgrader", {})}
    locked = [cell for cell in source_cells if cell.locked]
    changed = [c.name for c in locked if c.name in present and utils.compute_checksum(present[c.name]) != c.checksum]
    deleted = [c.name for c in locked if c.name not in present]
    return changed, deleted


def note(changed: list[str], deleted: list[str]) -> str:
    parts = [f"changed {', '.join(f'`{n}`' for n in changed)}" if changed else "",
             f"deleted {', '.join(f'`{n}`' for n in deleted)}" if deleted else ""]
    return ("**Flagged by the autograder.** This submission " + " and ".join(p for p in parts if p) +
            ": read-only or test cells. They were graded as released, and your instructor has been told.")


class FlagEditedCells(NbGraderPreprocessor):
    """Flag the submission when a read-only or test cell was changed or deleted (see the module)."""

    def preprocess(self, nb, resources):
        ids = resources["nbgrader"]
        with Gradebook(ids["db_url"]) as gb:
            source = gb.find_notebook(ids["notebook"], ids["assignment"])
            changed, deleted = edited_cells(nb, source.source_cells)
            if changed or deleted:
                submitted = gb.find_submission_notebook(ids["notebook"], ids["assignment"], ids["student"])
                submitted.flagged = True
                gb.db.commit()
                self.log.warning("%s/%s/%s flagged: changed %s, deleted %s", ids["student"], ids["assignment"],
                                 ids["notebook"], changed or "none", deleted or "none")
                nb.cells.insert(0, new_markdown_cell(note(changed, deleted)))
        return nb, resources
