"""Small texts written for the course: a Chinese story with its English translation,
and multilingual strings that a tokenizer must round-trip.

The story is the project's own (no licence questions) and the two versions are
paragraph-by-paragraph translations, so "how many tokens for the same content?"
is a fair question::

    >>> len(CHINESE_PARAGRAPHS) == len(ENGLISH_PARAGRAPHS)
    True
    >>> train, held_out = split_paragraphs(CHINESE_PARAGRAPHS, held_out=2)
    >>> held_out.startswith(CHINESE_PARAGRAPHS[-2]) and held_out.endswith(CHINESE_PARAGRAPHS[-1])
    True
"""

from __future__ import annotations

from collections.abc import Sequence

CHINESE_PARAGRAPHS: tuple[str, ...] = (
    "江南的小镇上有一条清澈的小河，河边住着一位会做茶的老人。每天清晨，太阳还没有升起，"
    "他就把炉子点着，烧一壶山泉水。镇上的人都说，他泡的茶有一种特别的香味，喝了以后心里很安静。",
    "老人有一个孙女，名叫小雨。小雨喜欢读书，也喜欢问问题。她常常问爷爷：“为什么同样的茶叶，"
    "别人泡出来的味道不一样？”爷爷笑着说：“水的温度、时间的长短，还有泡茶人的心情，都会改变茶的味道。”",
    "后来，小雨去城里的大学学习计算机。她第一次知道，电脑并不认识汉字，它只认识数字。"
    "每一个字都要先变成一串字节，再由程序把常见的字节组合成更大的单位。这个过程叫做分词，是训练语言模型的第一步。",
    "小雨发现，很多分词器是用英文资料训练的。英文单词常常只需要一个词元，而一个汉字却可能被切成两三个碎片。"
    "同样一句话，用中文写出来，模型要读的词元反而更多，计算的成本也更高。",
    "于是她决定用中文文章训练一个自己的分词器。她收集了小说、新闻和家乡的故事，让程序反复统计最常见的相邻字节，"
    "然后把它们合并。几千次合并之后，“我们”、“时候”、“学习”这样的常用词都变成了一个词元。",
    "放假回家的时候，小雨把这件事讲给爷爷听。爷爷想了想，说：“这和泡茶很像。先认识每一片叶子，"
    "再知道哪些叶子放在一起最好。”小雨笑了，她觉得爷爷说得很有道理。",
    "第二年春天，河边的柳树又绿了。小雨带着笔记本电脑回到小镇，在茶馆里给孩子们讲语言模型的故事。"
    "孩子们听得很认真，有人问：“电脑也会喝茶吗？”大家都笑了起来。",
    "小雨知道，好的工具要为使用它的人服务。一个只懂英文的分词器，对说中文的人并不公平。"
    "她希望将来的模型能够平等地对待每一种语言，让每个人都能用自己的母语和机器交流。",
)

ENGLISH_PARAGRAPHS: tuple[str, ...] = (
    "In a small town south of the river there is a clear stream, and by the stream lives an old man who "
    "makes tea. Every morning, before the sun is up, he lights the stove and boils a pot of spring water. "
    "People in the town say that his tea has a special fragrance, and that after drinking it the heart feels calm.",
    "The old man has a granddaughter called Xiaoyu. Xiaoyu loves to read and loves to ask questions. She often "
    "asks her grandfather: \"Why does the same tea taste different when other people make it?\" Grandfather "
    "smiles and says: \"The temperature of the water, the length of the time, and the mood of the person "
    "making it all change the taste of the tea.\"",
    "Later, Xiaoyu went to university in the city to study computing. For the first time she learned that a "
    "computer does not know Chinese characters; it only knows numbers. Every character must first become a "
    "string of bytes, and then a program groups common bytes into larger units. This process is called "
    "tokenization, and it is the first step in training a language model.",
    "Xiaoyu found that many tokenizers were trained on English material. An English word often needs only one "
    "token, while a Chinese character may be cut into two or three fragments. The same sentence written in "
    "Chinese gives the model more tokens to read, and the cost of computing is higher too.",
    "So she decided to train a tokenizer of her own on Chinese writing. She collected novels, news and stories "
    "from her home town, and let the program count the most common adjacent bytes again and again, then merge "
    "them. After a few thousand merges, common words such as \"we\", \"when\" and \"study\" had each become a "
    "single token.",
    "When she went home for the holidays, Xiaoyu told her grandfather about it. Grandfather thought for a "
    "moment and said: \"This is a lot like making tea. First you get to know every leaf, then you learn which "
    "leaves go best together.\" Xiaoyu laughed; she felt her grandfather was quite right.",
    "The next spring, the willows by the stream turned green again. Xiaoyu came back to the town with her "
    "laptop and told the children in the tea house the story of language models. The children listened "
    "carefully, and someone asked: \"Can computers drink tea too?\" Everyone burst out laughing.",
    "Xiaoyu knew that a good tool should serve the people who use it. A tokenizer that only understands "
    "English is not fair to people who speak Chinese. She hoped that future models would treat every "
    "language equally, so that everyone could talk to machines in their own mother tongue.",
)

# Strings a byte-level tokenizer must give back exactly: scripts, emoji sequences, accents, code.
MULTILINGUAL_SAMPLES: dict[str, str] = {
    "chinese": "分词是训练语言模型的第一步。",
    "japanese": "東京は日本の首都です。ひらがなとカタカナ、そして漢字。",
    "korean": "안녕하세요, 세계!",
    "arabic": "مرحبا بالعالم",
    "emoji_zwj": "family 👨‍👩‍👧‍👦, flag 🇯🇵, skin tone 👍🏽, rainbow flag 🏳️‍🌈",
    "accents_composed": "café naïve résumé Ångström",
    "accents_decomposed": "cafe\u0301 nai\u0308ve",  # e + combining acute: looks the same, different bytes
    "code_indentation": "def f(x):\n    if x:\n\t\treturn [x ** 2  for _ in range(3)]\n    return None\n",
    "whitespace": "  leading, trailing   \n\n\r\n\t end  ",
    "math_and_symbols": "∑ᵢ xᵢ² ≤ ∞ — “quotes” ‹›  ½ € ₹",
}


def split_paragraphs(paragraphs: Sequence[str], held_out: int = 2) -> tuple[str, str]:
    """Join all but the last ``held_out`` paragraphs (training text) and the rest (test text)."""
    if not 0 < held_out < len(paragraphs):
        raise ValueError(f"held_out must be between 1 and {len(paragraphs) - 1}, got {held_out}.")
    return "\n".join(paragraphs[:-held_out]), "\n".join(paragraphs[-held_out:])


CHINESE_TEXT = "\n".join(CHINESE_PARAGRAPHS)
ENGLISH_TEXT = "\n".join(ENGLISH_PARAGRAPHS)
