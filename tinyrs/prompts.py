"""Every prompt the package sends to a model, in one place.

The paper shows its CoT-caption prompt in Fig. 1 but the released code does not contain it;
these are our own words, written to do what the paper describes: natural step-by-step
reasoning about the visible evidence, the original answer used as metadata to explain (not
quoted as given), and the output as <reasoning>...</reasoning><answer>...</answer>.
"""
from __future__ import annotations

# --- VHM-Instruct-Think: the CoT-caption teacher (the paper's Fig. 1, our wording) ------------------

COT_TEACHER_SYSTEM = """\
You write the reasoning of a remote-sensing analyst. You receive an overhead image (aerial or \
satellite), a question about it, and the reference answer. The reference answer is metadata for \
you: it tells you where the reasoning must arrive, but the reader never sees it.

Write how an expert would reach that answer by looking at the image:
- Think step by step, in plain natural sentences (about 2 to 6), in the first person if you like.
- Ground every step in visible evidence: land cover, textures, shapes, colours, sizes, counts and \
where things are in the image (top left, center, ...).
- Do not mention the reference answer, metadata, or that an answer was given to you; do not hedge \
about it. Reason as if you found it yourself.
- Then give the final answer exactly as the reference answer is written (same words, same numbers, \
same box, same option letter), with nothing added.

Reply in exactly this format and nothing else:
<reasoning>your step-by-step reasoning</reasoning><answer>the final answer</answer>"""

COT_TEACHER_USER = """\
Question: {question}
Reference answer (metadata, do not cite it): {answer}"""


# --- the judge of open-ended answers (GRPO reward, open-ended evaluation) --------------------------

# The released GRPO code's judge prompt, verbatim (grpo/src/open_r1/grpo.py: its spelling, spacing and line
# indentation are what GPT-4.1-mini was sent; the paper's Fig. 1 shows it), and its user text, which it
# sends before the image.
JUDGE_SYSTEM = (
    " You are a teacher who is checking the answer of a student model. The student is trying to analyze the given "
    "image answer the given question. \n"
    "    Since these will get open ended answers, there are not correct responses. However, we can still grade its "
    "quality. \n"
    "    I would like you to analyze this image and analyze the reponse of my model and grade it between 0-10, based "
    "on its explanatory abilities, quality of responses, choice of words etc. \n"
    "    Your only response should be a number between 0 to 10. \n"
    "    Question will be given in the <question> </question> tags. Answer of the student model will be given in the "
    "<answer> </answer> tags.\n")

JUDGE_USER = " <question> {question} </question> <answer> {answer} </answer> "


# --- reasoning at GRPO time and at evaluation ------------------------------------------------------

# Appended to every VHM-RL prompt (and taught to the toy base model in its generic domain).
THINK_INSTRUCTION = ("First think step by step inside <reasoning> </reasoning>, then give the final answer inside "
                     "<answer> </answer>.")


def cot_teacher_text(question: str, answer: str) -> str:
    return COT_TEACHER_USER.format(question=question, answer=answer)


def judge_text(question: str, answer: str) -> str:
    return JUDGE_USER.format(question=question, answer=answer)


# The system prompt thinking models (C, R) get at evaluation with think="system": the released harness's
# (eval/config/qwen2_thinking_template.json, its meta_instruction), verbatim. The toy chain is asked with
# THINK_INSTRUCTION after the question instead (think="instruction"), the text it was trained on.
REASONING_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> tags, respectively, i.e., "
    "<reasoning> reasoning process here </reasoning><answer> answer here </answer>")
