"""The model: nanoGPT's GPT read top to bottom (gpt), the steps of "Let's build GPT" as models of their own
(ladder; their names: arch), one forward pass step by step (forward_pass) and the anatomy in numbers:
parameters, memory, FLOPs (anatomy). arch, forward_pass and anatomy are torch-free."""
